// The hello-world extension's handler: a WebAssembly core module for ExtBundles' runtime
// (`wasm-core@1`, the guest ABI in docs/guest-abi.md). Freestanding C, no libc: built by
// ../build.sh with the Swift toolchain's clang into dist/main.wasm.
//
// It answers every request with JSON echoing the request's method and path and the install's
// `greeting` config value: {"message":"<greeting>, world","method":"GET","path":"/hello"}.

typedef unsigned int u32;
typedef unsigned char u8;

// --- A bump allocator over the module's linear memory -------------------------------------
extern u8 __heap_base;
static u32 heap_top = 0;

__attribute__((export_name("alloc"))) u32 alloc(u32 size) {
    if (heap_top == 0) heap_top = (u32)&__heap_base;
    u32 start = (heap_top + 7u) & ~7u;
    u32 end = start + size;
    u32 pages = __builtin_wasm_memory_size(0);
    if (end > pages * 65536u) {
        u32 more = (end - pages * 65536u + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, more) == (unsigned long)-1) return 0;
    }
    heap_top = end;
    return start;
}

__attribute__((export_name("dealloc"))) void dealloc(u32 ptr, u32 size) {
    (void)ptr;
    (void)size;  // a bump allocator frees everything when the instance goes (one per request)
}

// --- Host imports (module "alga") ---------------------------------------------------------
__attribute__((import_module("alga"), import_name("log_info"))) void log_info(const u8 *ptr, u32 len);

// --- Small helpers --------------------------------------------------------------------------
static u32 length(const char *text) {
    u32 n = 0;
    while (text[n]) n++;
    return n;
}

static void copy(u8 *to, const u8 *from, u32 n) {
    for (u32 i = 0; i < n; i++) to[i] = from[i];
}

// --- Reading the request document -----------------------------------------------------------
// A small JSON walker: enough to find a member of an object by name at its own level (a config
// key or value that spells "method" is never taken for the request's method) and to take a
// string's contents with its escapes kept, which is valid inside the JSON this handler writes.
#define NONE 0xFFFFFFFFu

static u32 skip_space(const u8 *json, u32 i, u32 len) {
    while (i < len && (json[i] == ' ' || json[i] == '\n' || json[i] == '\r' || json[i] == '\t')) i++;
    return i;
}

// The index just past the string that starts at `i` (a quote), or NONE.
static u32 skip_string(const u8 *json, u32 i, u32 len) {
    for (i++; i < len; i++) {
        if (json[i] == '\\') i++;
        else if (json[i] == '"') return i + 1;
    }
    return NONE;
}

// The index just past the value that starts at `i`, or NONE.
static u32 skip_value(const u8 *json, u32 i, u32 len) {
    if (i >= len) return NONE;
    if (json[i] == '"') return skip_string(json, i, len);
    if (json[i] == '{' || json[i] == '[') {
        u32 depth = 0;
        while (i < len) {
            u8 c = json[i];
            if (c == '"') {
                i = skip_string(json, i, len);
                if (i == NONE) return NONE;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') {
                if (--depth == 0) return i + 1;
            }
            i++;
        }
        return NONE;
    }
    while (i < len && json[i] != ',' && json[i] != '}' && json[i] != ']') i++;
    return i;
}

static int same(const u8 *a, const char *b, u32 n) {
    for (u32 i = 0; i < n; i++)
        if (a[i] != (u8)b[i]) return 0;
    return b[n] == 0;
}

// Where the value of member `key` of the object at `at` starts, or NONE.
static u32 member(const u8 *json, u32 at, u32 len, const char *key) {
    u32 i = skip_space(json, at, len);
    if (i >= len || json[i] != '{') return NONE;
    i = skip_space(json, i + 1, len);
    while (i < len && json[i] == '"') {
        u32 after = skip_string(json, i, len);
        if (after == NONE) return NONE;
        int match = same(json + i + 1, key, after - i - 2);
        i = skip_space(json, after, len);
        if (i >= len || json[i] != ':') return NONE;
        i = skip_space(json, i + 1, len);
        if (match) return i;
        i = skip_value(json, i, len);
        if (i == NONE) return NONE;
        i = skip_space(json, i, len);
        if (i >= len || json[i] != ',') return NONE;
        i = skip_space(json, i + 1, len);
    }
    return NONE;
}

// The contents of the string at `at` (escapes kept), or 0 when it is not a string.
static const u8 *string_at(const u8 *json, u32 at, u32 len, u32 *out_len) {
    if (at == NONE || at >= len || json[at] != '"') return 0;
    u32 end = skip_string(json, at, len);
    if (end == NONE) return 0;
    *out_len = end - at - 2;
    return json + at + 1;
}

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static u32 base64(const u8 *in, u32 n, u8 *out) {
    u32 o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        u32 v = (u32)in[i] << 16 | (u32)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        u32 v = (u32)in[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        u32 v = (u32)in[i] << 16 | (u32)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = '=';
    }
    return o;
}

static u32 append(u8 *to, u32 at, const u8 *from, u32 n) {
    copy(to + at, from, n);
    return at + n;
}

#define APPEND_TEXT(buffer, at, text) append(buffer, at, (const u8 *)(text), length(text))

// --- The handler ----------------------------------------------------------------------------
__attribute__((export_name("handler"))) int handler(u32 req_ptr, u32 req_len, u32 out_ptr) {
    const u8 *request = (const u8 *)req_ptr;
    u32 method_len = 0, path_len = 0, greeting_len = 0;
    u32 http = member(request, 0, req_len, "http");
    u32 context = member(request, 0, req_len, "context");
    u32 config = context == NONE ? NONE : member(request, context, req_len, "config");
    const u8 *method = http == NONE ? 0 : string_at(request, member(request, http, req_len, "method"), req_len, &method_len);
    const u8 *path = http == NONE ? 0 : string_at(request, member(request, http, req_len, "path"), req_len, &path_len);
    const u8 *greeting = config == NONE ? 0 : string_at(request, member(request, config, req_len, "greeting"), req_len, &greeting_len);
    if (!method || !path) return 1;  // not the request this guest understands: an application error
    if (!greeting) {
        greeting = (const u8 *)"Hello";
        greeting_len = 5;
    }
    log_info((const u8 *)"hello-world handled a request", 29);

    // The body: {"message":"<greeting>, world","method":"<method>","path":"<path>"}
    u8 *body = (u8 *)alloc(64 + greeting_len + method_len + path_len);
    if (!body) return 2;
    u32 n = APPEND_TEXT(body, 0, "{\"message\":\"");
    n = append(body, n, greeting, greeting_len);
    n = APPEND_TEXT(body, n, ", world\",\"method\":\"");
    n = append(body, n, method, method_len);
    n = APPEND_TEXT(body, n, "\",\"path\":\"");
    n = append(body, n, path, path_len);
    n = APPEND_TEXT(body, n, "\"}");

    // The response: {"status":200,"headers":{"content-type":"application/json"},"body_b64":"..."}
    u8 *response = (u8 *)alloc(96 + (n + 2) / 3 * 4);
    if (!response) return 2;
    u32 r = APPEND_TEXT(response, 0, "{\"status\":200,\"headers\":{\"content-type\":\"application/json\"},\"body_b64\":\"");
    r += base64(body, n, response + r);
    r = APPEND_TEXT(response, r, "\"}");

    u32 *out = (u32 *)out_ptr;
    out[0] = (u32)response;
    out[1] = r;
    return 0;
}
