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

// The string value of the first `"key":"` after `from` in `json` (no escapes inside), or 0.
static const u8 *find_string(const u8 *json, u32 len, const char *key, u32 *out_len) {
    u32 key_len = length(key);
    for (u32 i = 0; i + key_len + 4 <= len; i++) {
        if (json[i] != '"') continue;
        u32 k = 0;
        while (k < key_len && json[i + 1 + k] == (u8)key[k]) k++;
        if (k != key_len || json[i + 1 + k] != '"') continue;
        u32 j = i + 2 + key_len;
        while (j < len && (json[j] == ' ' || json[j] == ':')) j++;
        if (j >= len || json[j] != '"') continue;
        u32 start = j + 1, end = start;
        while (end < len && json[end] != '"' && json[end] != '\\') end++;
        if (end >= len || json[end] != '"') return 0;
        *out_len = end - start;
        return json + start;
    }
    return 0;
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
    const u8 *method = find_string(request, req_len, "method", &method_len);
    const u8 *path = find_string(request, req_len, "path", &path_len);
    const u8 *greeting = find_string(request, req_len, "greeting", &greeting_len);
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
