public import BundleCore
@_spi(Fuzzing) import WasmKit
import WasmParser

/// A guest module parsed, validated and checked against the `wasm-core@1` contract
/// (`docs/guest-abi.md`), ready to be instantiated once per request.
///
/// Loading does everything that depends only on the bytes, once: the component check, parsing,
/// validation and translation of every function (a probe instance, whose start function is not
/// run), the exports' types, and the imports against what the host offers. A module that loads
/// can still trap, loop or misbehave when it runs; a module that does not load fails every
/// request the same way, with the ``ExecuteFailure`` kept here.
public struct GuestModule: Sendable {
    /// The bundle it came from, when known.
    public let hash: ContentHash?
    /// The size of the module's bytes.
    public let byteCount: Int
    /// The `alga` imports it uses.
    public let imports: Set<HostImport>
    /// Whether it exports `dealloc`.
    public let hasDealloc: Bool
    /// Whether its instances are reused between requests (reset to their state after
    /// instantiation; see ``InstancePool``).
    public var isPooled: Bool { pool != nil }
    let module: Module
    let pool: InstancePool?
    let globalNames: [String]

    /// A host function the runner offers a guest (module `alga`).
    public enum HostImport: String, Sendable, CaseIterable {
        /// `log_info(ptr, len)`.
        case logInfo = "log_info"
        /// `log_error(ptr, len)`.
        case logError = "log_error"
        /// `http.fetch(req_ptr, req_len, out_ptr) -> i32`.
        case httpFetch = "http.fetch"
        /// `secret_get(name_ptr, name_len, out_ptr) -> i32`.
        case secretGet = "secret_get"

        /// Its signature.
        var type: FunctionType {
            switch self {
            case .logInfo, .logError: FunctionType(parameters: [.i32, .i32], results: [])
            case .httpFetch, .secretGet: FunctionType(parameters: [.i32, .i32, .i32], results: [.i32])
            }
        }
    }

    /// The proposals a guest may use: reference types (clang's default output) and nothing that
    /// allocates outside the guest's limits (exception handling keeps every caught exception in
    /// host memory until the call returns).
    public static let features: WasmFeatureSet = [.referenceTypes]

    /// The engine settings a guest runs with: the guest features and fuel metering (which the
    /// deadline needs).
    public static func engineConfiguration(stackSize: Int = 1 << 19) -> EngineConfiguration {
        EngineConfiguration(stackSize: stackSize, features: features, fuelMetering: true)
    }

    /// The header of a component (layer 1): `\0asm` then version 0x0d, layer 1.
    static let componentHeader: [UInt8] = [0x00, 0x61, 0x73, 0x6D, 0x0D, 0x00, 0x01, 0x00]

    /// Loads `bytes` with `engine`'s settings: at most `maxBytes` of module, tables of at most
    /// `maxTableElements` elements together, at most `poolCapacity` idle instances kept when the
    /// module can be pooled.
    public static func load(
        _ bytes: [UInt8], hash: ContentHash? = nil, engine: Engine, maxBytes: Int = 32 << 20, maxTableElements: Int = 100_000,
        poolCapacity: Int = 4
    ) throws(ExecuteFailure) -> GuestModule {
        guard bytes.count <= maxBytes else {
            throw .executeFailed("the module is larger than \(maxBytes) bytes (\(bytes.count))")
        }
        guard bytes.count >= 8, bytes[0..<4].elementsEqual([0x00, 0x61, 0x73, 0x6D]) else {
            throw .executeFailed("the module is not WebAssembly (no \\0asm header)")
        }
        if bytes[6] == 0x01 && bytes[7] == 0x00 { throw .componentsUnsupported }
        guard bytes[4..<8].elementsEqual([0x01, 0x00, 0x00, 0x00]) else {
            throw .executeFailed("the module has an unknown WebAssembly version \(bytes[4..<8].map { String($0) }.joined(separator: "."))")
        }
        // A module whose whole state can be put back gets its instances reused; it is loaded with
        // the extra exports that needs.
        let plan = InstancePool.plan(bytes, features: engine.configuration.features)
        var module: Module
        do {
            module = try parseWasm(bytes: plan?.bytes ?? bytes, features: engine.configuration.features)
        } catch {
            throw .executeFailed("the module does not parse: \(Text.short(String(describing: error)))", detail: String(reflecting: error))
        }
        // Imports: only `alga` functions the host offers, with their signatures.
        var used: Set<HostImport> = []
        for entry in module.imports {
            let name = "\(Text.short(entry.module, 64)).\(Text.short(entry.name, 64))"
            guard entry.module == "alga", let host = HostImport(rawValue: entry.name) else {
                throw .executeFailed("the module imports \(name), which the runner does not provide")
            }
            guard case .function(let typeIndex) = entry.descriptor, module.functionType(at: typeIndex) == host.type else {
                throw .executeFailed("the module imports \(name) with the wrong type")
            }
            used.insert(host)
        }
        // Exports, by kind; their types are checked on the probe instance.
        enum Kind { case function, memory, other, none }
        func exported(_ name: String) -> Kind {
            guard let export = module.exports.first(where: { $0.name == name }) else { return .none }
            switch export.descriptor {
            case .function: return .function
            case .memory: return .memory
            default: return .other
            }
        }
        guard exported("memory") == .memory else { throw .executeFailed("the module does not export its memory as `memory`") }
        for name in ["alloc", "handler"] where exported(name) != .function {
            throw .executeFailed("the module does not export the function `\(name)`")
        }
        let hasDealloc: Bool
        switch exported("dealloc") {
        case .none: hasDealloc = false
        case .function: hasDealloc = true
        default: throw .executeFailed("the module's `dealloc` export is not a function")
        }
        // A probe instance validates and translates every function, and gives the exports'
        // types; its start function is not run.
        var probe = module
        probe.dropStartFunction()
        let eager = Engine(configuration: EngineConfiguration(compilationMode: .eager, features: engine.configuration.features))
        let store = Store(engine: eager)
        store.resourceLimiter = GuestLimiter(maxMemoryBytes: 1 << 32, maxTableElements: maxTableElements)
        var imports = Imports()
        for host in used {
            imports.define(module: "alga", name: host.rawValue, Function(store: store, type: host.type) { _, _ in throw ProbeCall() })
        }
        let instance: Instance
        do {
            instance = try probe.instantiate(store: store, imports: imports)
        } catch {
            let text = String(describing: error)
            if text.contains("initial table size exceeds the resource limit") {
                throw .executeFailed("the module's tables are larger than \(maxTableElements) elements")
            }
            if text.contains("failed to reserve") || text.contains("allocat") {
                // A resource the host could not give now (address space, say): not the module's
                // fault, and not remembered.
                throw ExecuteFailure(.executeFailed, "the module could not be instantiated: \(Text.short(text))", detail: transientMarker)
            }
            throw .executeFailed("the module does not validate: \(Text.short(text))", detail: String(reflecting: error))
        }
        let expected: [(String, FunctionType, String)] = [
            ("alloc", FunctionType(parameters: [.i32], results: [.i32]), "(i32) -> i32"),
            ("handler", FunctionType(parameters: [.i32, .i32, .i32], results: [.i32]), "(i32, i32, i32) -> i32"),
        ]
        for (name, type, text) in expected where instance.exports[function: name]?.type != type {
            throw .executeFailed("the module's `\(name)` has the wrong type (the contract is \(text))")
        }
        if hasDealloc, instance.exports[function: "dealloc"]?.type != FunctionType(parameters: [.i32, .i32], results: []) {
            throw .executeFailed("the module's `dealloc` has the wrong type (the contract is (i32, i32) -> ())")
        }
        let memoryBytes = instance.exports[memory: "memory"]?.byteCount ?? Int.max
        let pooled = plan != nil && memoryBytes <= InstancePool.maxSnapshotBytes
        return GuestModule(
            hash: hash, byteCount: bytes.count, imports: used, hasDealloc: hasDealloc, module: module,
            pool: pooled ? InstancePool(capacity: poolCapacity) : nil, globalNames: pooled ? plan?.globals ?? [] : [])
    }

    private struct ProbeCall: Error {}

    /// The detail of a load failure that may not happen next time (it is not remembered).
    static let transientMarker = "transient"
}

/// Text for error messages and logs that may carry what a guest or a module wrote.
enum Text {
    /// Control characters (line breaks, escape sequences) written as `\u{XX}`, so a guest's
    /// log line stays one line.
    static func escapingControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// At most `limit` characters, control characters replaced by `?`.
    static func short(_ text: String, _ limit: Int = 200) -> String {
        var out = ""
        for (index, scalar) in text.unicodeScalars.enumerated() {
            if index == limit {
                out += "…"
                break
            }
            out.unicodeScalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? "?" : scalar)
        }
        return out
    }
}
