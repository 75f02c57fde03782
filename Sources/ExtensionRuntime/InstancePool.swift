import Foundation
@_spi(Fuzzing) import WasmKit
import WasmParser

/// Instances of one module kept between requests and put back exactly as instantiation left
/// them: the answer to WasmKit translating a function into each instance that calls it, which
/// costs far more than the call itself for a handler of a few kilobytes.
///
/// A module is pooled only when its whole state can be put back:
/// - its linear memory is at most ``maxSnapshotBytes`` and is restored byte for byte from a
///   snapshot taken right after instantiation (an instance whose memory grew is dropped);
/// - its mutable globals are restored to their values after instantiation (the module is
///   rewritten at load to export the ones it does not, under `\u{0}extbundles.global.N`);
/// - its code has no instruction that changes a table or a segment (`table.set`, `table.grow`,
///   `table.fill`, `table.copy`, `table.init`, `elem.drop`, `memory.init`, `data.drop`), so tables
///   and segments are as instantiation made them.
/// - it has no start function (which would run with the first request's host state, and its
///   results would be in the snapshot).
/// Anything else gets a fresh instance per request, as does every request after one that trapped,
/// timed out or failed in any way (its instance is dropped, never reused).
final class InstancePool: @unchecked Sendable {
    /// The largest memory snapshot restored per request (a copy of it is the reset's cost).
    static let maxSnapshotBytes = 1 << 20

    /// The most idle instances kept.
    let capacity: Int
    private let lock = NSLock()
    private var idle: [PooledInstance] = []

    init(capacity: Int) { self.capacity = capacity }

    /// An idle instance, if any.
    func take() -> PooledInstance? { lock.withLock { idle.popLast() } }

    /// Puts an instance back after a request that completed normally; it is reset first, and
    /// dropped if it cannot be.
    func give(_ pooled: PooledInstance) {
        guard pooled.reset() else { return }
        lock.withLock { if idle.count < capacity { idle.append(pooled) } }
    }

    /// What a load found out about a module's state.
    struct Plan: Sendable {
        /// The module's bytes, with the exports the pool needs added.
        var bytes: [UInt8]
        /// The export names of every mutable global.
        var globals: [String]
    }

    /// Whether `bytes` can be pooled, and the bytes to load if so.
    static func plan(_ bytes: [UInt8], features: WasmFeatureSet) -> Plan? {
        var parser = WasmParser.Parser(bytes: bytes, features: features)
        var mutable: [UInt32] = []
        var exported: [UInt32: String] = [:]
        var names: Set<String> = []
        var importedGlobals: UInt32 = 0
        do {
            while let payload = try parser.parseNext() {
                switch payload {
                case .startSection:
                    // A start function runs with the first request's host state (its secrets, its
                    // grants) and what it keeps would be in the snapshot every later request starts
                    // from: such a module gets a new instance per request.
                    return nil
                case .importSection(let imports):
                    for entry in imports { if case .global = entry.descriptor { importedGlobals += 1 } }
                case .globalSection(let globals):
                    for (index, global) in globals.enumerated() where global.type.mutability == .variable {
                        mutable.append(importedGlobals + UInt32(index))
                    }
                case .exportSection(let exports):
                    for export in exports {
                        names.insert(export.name)
                        if case .global(let index) = export.descriptor { exported[index] = export.name }
                    }
                case .codeSection(let bodies):
                    for body in bodies {
                        var scan = StateScan()
                        var expression = ExpressionParser(code: body)
                        while let visit = try expression.parse() { visit(visitor: &scan) }
                        if scan.changesTablesOrSegments { return nil }
                    }
                default:
                    break
                }
            }
        } catch {
            return nil
        }
        var added: [(name: String, index: UInt32)] = []
        var globals: [String] = []
        for index in mutable {
            if let name = exported[index] {
                globals.append(name)
            } else {
                var name = "\u{0}extbundles.global.\(index)"
                while names.contains(name) { name += "_" }
                names.insert(name)
                added.append((name, index))
                globals.append(name)
            }
        }
        guard let rewritten = addingGlobalExports(added, to: bytes) else { return nil }
        return Plan(bytes: rewritten, globals: globals)
    }

    /// `bytes` with `exports` appended to its export section (nil if it has none or is malformed).
    static func addingGlobalExports(_ exports: [(name: String, index: UInt32)], to bytes: [UInt8]) -> [UInt8]? {
        guard !exports.isEmpty else { return bytes }
        var out = Array(bytes[0..<8])
        var offset = 8
        var found = false
        while offset < bytes.count {
            let id = bytes[offset]
            guard let (size, sizeLength) = leb(bytes, offset + 1), offset + 1 + sizeLength + Int(size) <= bytes.count else { return nil }
            let start = offset + 1 + sizeLength
            let end = start + Int(size)
            if id == 7 {
                guard let (count, countLength) = leb(bytes, start), start + countLength <= end else { return nil }
                var payload = encode(count + UInt32(exports.count))
                payload += bytes[(start + countLength)..<end]
                for export in exports {
                    let name = Array(export.name.utf8)
                    payload += encode(UInt32(name.count)) + name + [0x03] + encode(export.index)
                }
                out.append(7)
                out += encode(UInt32(payload.count))
                out += payload
                found = true
            } else {
                out += bytes[offset..<end]
            }
            offset = end
        }
        return found ? out : nil
    }

    private static func leb(_ bytes: [UInt8], _ at: Int) -> (UInt32, Int)? {
        var value: UInt32 = 0
        for index in 0..<5 {
            guard at + index < bytes.count else { return nil }
            let byte = bytes[at + index]
            value |= UInt32(byte & 0x7F) << (7 * UInt32(index))
            if byte & 0x80 == 0 { return (value, index + 1) }
        }
        return nil
    }

    private static func encode(_ value: UInt32) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            out.append(byte)
        } while value != 0
        return out
    }
}

/// Finds the instructions that change tables or segments.
struct StateScan: InstructionVisitor {
    typealias VisitorError = Never
    var binaryOffset = 0
    var changesTablesOrSegments = false

    mutating func visitTableSet(table: UInt32) { changesTablesOrSegments = true }
    mutating func visitTableGrow(table: UInt32) { changesTablesOrSegments = true }
    mutating func visitTableFill(table: UInt32) { changesTablesOrSegments = true }
    mutating func visitTableCopy(dstTable: UInt32, srcTable: UInt32) { changesTablesOrSegments = true }
    mutating func visitTableInit(elemIndex: UInt32, table: UInt32) { changesTablesOrSegments = true }
    mutating func visitElemDrop(elemIndex: UInt32) { changesTablesOrSegments = true }
    mutating func visitMemoryInit(dataIndex: UInt32, memory: UInt32) { changesTablesOrSegments = true }
    mutating func visitDataDrop(dataIndex: UInt32) { changesTablesOrSegments = true }
}

/// An instance of a pooled module with what it needs to be put back.
final class PooledInstance: @unchecked Sendable {
    let store: Store
    let instance: Instance
    let memory: WasmKit.Memory
    let alloc: Function
    let handler: Function
    let limiter: GuestLimiter
    /// The request the imports serve now.
    let current: CurrentRequest
    private let snapshot: [UInt8]
    private let globals: [(global: WasmKit.Global, value: Value)]

    init(
        store: Store, instance: Instance, memory: WasmKit.Memory, alloc: Function, handler: Function, limiter: GuestLimiter, current: CurrentRequest,
        globalNames: [String]
    ) throws {
        self.store = store
        self.instance = instance
        self.memory = memory
        self.alloc = alloc
        self.handler = handler
        self.limiter = limiter
        self.current = current
        let size = memory.byteCount
        guard size <= InstancePool.maxSnapshotBytes else { throw ExecuteFailure.executeFailed("the memory is too large to pool") }
        snapshot = size == 0 ? [] : memory.withUnsafeBufferPointer(offset: 0, count: size) { Array($0) }
        var globals: [(WasmKit.Global, Value)] = []
        for name in globalNames {
            guard let global = instance.exports[global: name] else { throw ExecuteFailure.executeFailed("a global export is missing") }
            globals.append((global, global.value))
        }
        self.globals = globals
    }

    /// Puts memory and globals back; false when the memory grew (the instance must go).
    func reset() -> Bool {
        current.state = nil
        guard memory.byteCount == snapshot.count else { return false }
        if !snapshot.isEmpty {
            memory.withUnsafeMutableBufferPointer(offset: 0, count: snapshot.count) { buffer in
                snapshot.withUnsafeBytes { buffer.copyMemory(from: $0) }
            }
        }
        for (global, value) in globals {
            guard (try? global.assign(value)) != nil else { return false }
        }
        return true
    }
}

/// The host state of the request an instance serves now (its imports were bound at
/// instantiation, before any request).
final class CurrentRequest: @unchecked Sendable {
    var state: HostState?
}
