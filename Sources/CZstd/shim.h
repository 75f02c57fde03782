#ifndef EXTBUNDLES_CZSTD_SHIM_H
#define EXTBUNDLES_CZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>
#endif
