import BundleCore

/// The type of a tar entry, as its header declares it.
public enum TarEntryKind: Sendable, Equatable, CustomStringConvertible {
    /// A regular file (`0`, NUL, or `7` contiguous).
    case regular
    /// A directory (`5`).
    case directory
    /// A hard link (`1`).
    case hardlink
    /// A symbolic link (`2`).
    case symlink
    /// A character device (`3`).
    case characterDevice
    /// A block device (`4`).
    case blockDevice
    /// A named pipe (`6`).
    case fifo
    /// A GNU sparse file (`S`, or pax `GNU.sparse.*` records).
    case sparse
    /// Any other type flag.
    case other(UInt8)

    init(typeflag: UInt8) {
        switch typeflag {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): self = .regular
        case UInt8(ascii: "1"): self = .hardlink
        case UInt8(ascii: "2"): self = .symlink
        case UInt8(ascii: "3"): self = .characterDevice
        case UInt8(ascii: "4"): self = .blockDevice
        case UInt8(ascii: "5"): self = .directory
        case UInt8(ascii: "6"): self = .fifo
        case UInt8(ascii: "S"): self = .sparse
        default: self = .other(typeflag)
        }
    }

    /// A word for messages: `symlink`, `hardlink`, ...
    public var description: String {
        switch self {
        case .regular: "regular file"
        case .directory: "directory"
        case .hardlink: "hardlink"
        case .symlink: "symlink"
        case .characterDevice: "character device"
        case .blockDevice: "block device"
        case .fifo: "fifo"
        case .sparse: "sparse file"
        case .other(let flag):
            (0x20..<0x7f).contains(flag) ? "entry of type '\(Character(Unicode.Scalar(flag)))'" : "entry of type \(flag)"
        }
    }
}

/// One tar entry's header, after pax and GNU long-name records were applied.
public struct TarHeader: Sendable, Equatable {
    /// The path bytes exactly as recorded (pax `path`, GNU `L`, or ustar prefix + name).
    public var rawPath: [UInt8]
    /// The type.
    public var kind: TarEntryKind
    /// Bytes of data that follow the header.
    public var size: Int64
    /// The permission bits.
    public var mode: UInt32
    /// Modification time, seconds since the epoch.
    public var mtime: Int64
    /// The link target of a symlink or hardlink.
    public var linkName: [UInt8]
    /// Offset of the entry's (first) header in the tar stream.
    public var offset: Int64

    /// The path as text for messages: control characters and invalid UTF-8 escaped.
    public var displayPath: String { Printable.escape(bytes: rawPath) }
}

/// Receives the events of a ``TarParser``.
public protocol TarParserDelegate: AnyObject {
    /// A header was read; its data (``TarHeader/size`` bytes) follows in ``tarData(_:)`` calls.
    func tarHeader(_ header: TarHeader) throws(ArchiveError)
    /// A piece of the current entry's data.
    func tarData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError)
    /// The current entry's data is complete.
    func tarEntryEnd() throws(ArchiveError)
}

/// A push parser for tar streams: ustar, GNU (`L`/`K` long names, base-256 numbers) and pax
/// (`x` records: path, linkpath, size, mtime). Header checksums are checked; a missing
/// end-of-archive marker is tolerated when the stream ends on an entry boundary, but not a stream
/// that ends inside a header, a record, an entry's data or its padding.
///
/// Where tar tools could read the same bytes differently, the stream is refused rather than
/// guessed at: a pax global (`g`) record that sets `path`, `linkpath` or `size` (GNU tar and
/// bsdtar disagree on whether it applies), and an entry named both by a GNU long name and a pax
/// `path` (or `linkpath`). Other global records are ignored.
///
/// Feed it the decompressed stream in chunks of any size with ``consume(_:)``, then call
/// ``finish()``. It holds at most one header block and ``ArchiveLimits/metadataBytes`` of
/// metadata records (all the records before one entry together) in memory.
public final class TarParser {
    private enum State {
        case header
        case data(remaining: Int64)
        case meta(kind: UInt8, remaining: Int64)
        case padding(remaining: Int)
        case end
    }

    private unowned let delegate: any TarParserDelegate
    private let metadataLimit: Int
    private let archiveMetadataLimit: Int64
    /// Every record byte of the archive so far.
    private var archiveMetadataBytes: Int64 = 0
    /// Pax and long-name headers since the last entry.
    private var specialHeadersInARow = 0
    private var state = State.header
    private var block = [UInt8](repeating: 0, count: 512)
    private var blockFill = 0
    private var meta: [UInt8] = []
    private var pendingPax: [String: [UInt8]] = [:]
    private var pendingMetadataBytes: Int64 = 0
    /// The record types (`x`, `L`, `K`) seen since the last entry: each may appear once.
    private var pendingRecordTypes: Set<UInt8> = []
    private var pendingLongName: [UInt8]?
    private var pendingLongLink: [UInt8]?
    private var entryStart: Int64?
    private var current: TarHeader?
    /// Bytes consumed so far.
    public private(set) var offset: Int64 = 0
    /// Whether an end-of-archive block was seen.
    public private(set) var sawEndMarker = false

    /// Creates a parser reporting to `delegate` (held unowned: keep it alive while parsing).
    public init(
        delegate: any TarParserDelegate, metadataLimit: Int = ArchiveLimits.default.metadataBytes,
        archiveMetadataLimit: Int64 = ArchiveLimits.default.archiveMetadataBytes
    ) {
        self.delegate = delegate
        self.metadataLimit = metadataLimit
        self.archiveMetadataLimit = archiveMetadataLimit
    }

    /// Parses the next piece of the tar stream.
    public func consume(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        var index = 0
        let count = bytes.count
        while index < count {
            switch state {
            case .header:
                let take = min(512 - blockFill, count - index)
                block.withUnsafeMutableBytes { dst in
                    dst.baseAddress!.advanced(by: blockFill).copyMemory(
                        from: bytes.baseAddress!.advanced(by: index), byteCount: take)
                }
                blockFill += take
                index += take
                offset += Int64(take)
                if blockFill == 512 {
                    blockFill = 0
                    try processHeader()
                }
            case .data(let remaining):
                let take = Int(min(remaining, Int64(count - index)))
                try delegate.tarData(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
                index += take
                offset += Int64(take)
                if remaining == Int64(take) {
                    state = .padding(remaining: Self.padding(for: current?.size ?? 0))
                    current = nil
                    try delegate.tarEntryEnd()
                } else {
                    state = .data(remaining: remaining - Int64(take))
                }
            case .meta(let kind, let remaining):
                let take = Int(min(remaining, Int64(count - index)))
                meta.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
                index += take
                offset += Int64(take)
                if remaining == Int64(take) {
                    state = .padding(remaining: Self.padding(for: Int64(meta.count)))
                    try processMeta(kind: kind)
                } else {
                    state = .meta(kind: kind, remaining: remaining - Int64(take))
                }
            case .padding(let remaining):
                let take = min(remaining, count - index)
                index += take
                offset += Int64(take)
                state = remaining == take ? .header : .padding(remaining: remaining - take)
            case .end:
                offset += Int64(count - index)
                index = count
            }
        }
    }

    /// Confirms the stream did not stop inside a header, a record or an entry's data.
    public func finish() throws(ArchiveError) {
        guard offset > 0 else { throw ArchiveError(code: .tarTruncated, reason: "the archive holds no tar data") }
        switch state {
        case .header where blockFill == 0 && pendingLongName == nil && pendingLongLink == nil && pendingPax.isEmpty:
            return
        case .end, .padding(remaining: 0):
            return
        case .padding(let remaining):
            throw ArchiveError(
                code: .tarTruncated, reason: "tar stream ends inside an entry's padding: \(remaining) bytes missing",
                offset: offset)
        case .data(let remaining):
            let header = current
            throw ArchiveError(
                code: .tarTruncated,
                reason: "tar stream ends inside an entry's data: \(remaining) of \(header?.size ?? 0) bytes missing",
                path: header?.displayPath, actual: (header?.size ?? 0) - remaining, offset: header?.offset)
        case .header, .meta:
            throw ArchiveError(
                code: .tarTruncated, reason: "tar stream ends inside a header", offset: entryStart ?? offset)
        }
    }

    private static func padding(for size: Int64) -> Int { Int((512 - size % 512) % 512) }

    private func processHeader() throws(ArchiveError) {
        let headerOffset = offset - 512
        if entryStart == nil { entryStart = headerOffset }
        let isZero = block.withUnsafeBytes { raw in
            raw.withMemoryRebound(to: UInt64.self) { words in words.allSatisfy { $0 == 0 } }
        }
        if isZero {
            // bsdtar refuses records that no entry follows ("Damaged tar archive").
            if !pendingRecordTypes.isEmpty || !pendingPax.isEmpty || pendingLongName != nil || pendingLongLink != nil {
                throw ArchiveError(
                    code: .tarMalformed, reason: "pax or long-name records with no entry after them", offset: entryStart ?? headerOffset)
            }
            sawEndMarker = true
            state = .end
            return
        }
        try verifyChecksum(at: headerOffset)
        let isUstar = try checkFormat(at: headerOffset)
        let typeflag = block[156]
        let size = try number(124, 12, field: "size", at: headerOffset)
        guard size >= 0 else {
            throw ArchiveError(code: .tarMalformed, reason: "negative size field", offset: headerOffset)
        }
        switch typeflag {
        case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
            // Every record before one entry counts, so a run of records cannot pile up memory.
            guard size <= Int64(metadataLimit) - pendingMetadataBytes else {
                throw ArchiveError.limitExceeded(
                    "metadataBytes", limitValue: Int64(metadataLimit),
                    actual: pendingMetadataBytes.addingReportingOverflow(size).overflow ? .max : pendingMetadataBytes + size)
            }
            pendingMetadataBytes += size
            // bsdtar refuses 32 special headers in a row ("Too many special headers"); so do we,
            // which also bounds the empty records a header flood could repeat between entries.
            specialHeadersInARow += 1
            guard specialHeadersInARow < 32 else {
                throw ArchiveError(
                    code: .tarMalformed, reason: "32 pax or long-name headers in a row (bsdtar refuses them)", offset: headerOffset)
            }
            // And all records of the archive together, each header counted as at least its own
            // block, so that a run of entries each carrying a megabyte of records (or a flood of
            // empty ones) cannot cost a reader minutes.
            let cost = max(size, 512)
            guard cost <= archiveMetadataLimit - archiveMetadataBytes else {
                throw ArchiveError.limitExceeded(
                    "archiveMetadataBytes", limitValue: archiveMetadataLimit,
                    actual: archiveMetadataBytes.addingReportingOverflow(cost).overflow ? .max : archiveMetadataBytes + cost)
            }
            archiveMetadataBytes += cost
            // GNU tar and bsdtar use only the last of several `x` (or `L`, `K`) records before an
            // entry, where merging them would read another entry: one of each, or the archive is refused.
            if typeflag != UInt8(ascii: "g") {
                guard pendingRecordTypes.insert(typeflag).inserted else {
                    throw ArchiveError(
                        code: .tarMalformed,
                        reason: "two '\(Character(Unicode.Scalar(typeflag)))' records for one entry (tar tools keep only the last)",
                        offset: headerOffset)
                }
            }
            meta.removeAll(keepingCapacity: true)
            state = size == 0 ? .header : .meta(kind: typeflag, remaining: size)
            if size == 0 { try processMeta(kind: typeflag) }
            return
        default:
            break
        }
        if pendingPax["path"] != nil && pendingLongName != nil || pendingPax["linkpath"] != nil && pendingLongLink != nil {
            throw ArchiveError(
                code: .tarMalformed, reason: "an entry is named by both a GNU long-name record and a pax record",
                offset: entryStart ?? headerOffset)
        }
        var path = pendingPax["path"] ?? pendingLongName
        if path == nil {
            let name = field(0, 100)
            if isUstar, block[345] != 0 {
                path = field(345, 155) + [UInt8(ascii: "/")] + name
            } else {
                path = name
            }
        }
        var kind = TarEntryKind(typeflag: typeflag)
        if pendingPax.keys.contains(where: { $0.hasPrefix("GNU.sparse.") }) { kind = .sparse }
        var entrySize = size
        if let paxSize = pendingPax["size"] {
            guard let value = Self.decimal(paxSize), value >= 0 else {
                throw ArchiveError(code: .tarMalformed, reason: "pax size record is not a number", offset: headerOffset)
            }
            entrySize = value
        }
        var mtime = try number(136, 12, field: "mtime", at: headerOffset)
        // GNU tar refuses ("Malformed extended header") numbers it cannot read; so do we.
        for key in ["atime", "ctime", "mtime"] {
            guard let text = pendingPax[key] else { continue }
            guard let value = Self.time(text) else {
                throw ArchiveError(code: .tarMalformed, reason: "pax \(key) record is not a number", offset: headerOffset)
            }
            if key == "mtime" { mtime = value }
        }
        for key in ["uid", "gid"] {
            guard let text = pendingPax[key] else { continue }
            guard let value = Self.decimal(text), (0...Int64(UInt32.max)).contains(value) else {
                throw ArchiveError(code: .tarMalformed, reason: "pax \(key) record is not a number from 0 to 4294967295", offset: headerOffset)
            }
        }
        let mode = try number(100, 8, field: "mode", at: headerOffset)
        // Read but unused: GNU tar refuses an archive whose owner fields it cannot read.
        _ = try number(108, 8, field: "uid", at: headerOffset)
        _ = try number(116, 8, field: "gid", at: headerOffset)
        let header = TarHeader(
            rawPath: path!, kind: kind, size: entrySize, mode: UInt32(truncatingIfNeeded: mode & 0o7777),
            mtime: mtime, linkName: pendingPax["linkpath"] ?? pendingLongLink ?? field(157, 100),
            offset: entryStart ?? headerOffset)
        pendingPax.removeAll(keepingCapacity: true)
        pendingMetadataBytes = 0
        specialHeadersInARow = 0
        pendingRecordTypes.removeAll(keepingCapacity: true)
        pendingLongName = nil
        pendingLongLink = nil
        entryStart = nil
        // Only regular files, directories (old GNU dumpdirs) and unknown types carry data;
        // for links, devices and fifos the size field does not describe following blocks.
        let dataSize: Int64
        switch kind {
        case .hardlink, .symlink, .characterDevice, .blockDevice, .fifo: dataSize = 0
        default: dataSize = entrySize
        }
        current = header
        current?.size = dataSize
        try delegate.tarHeader(header)
        if dataSize == 0 {
            current = nil
            try delegate.tarEntryEnd()
            state = .header
        } else {
            state = .data(remaining: dataSize)
        }
    }

    private func processMeta(kind: UInt8) throws(ArchiveError) {
        switch kind {
        case UInt8(ascii: "x"):
            try parsePax(into: &pendingPax)
            if let key = pendingPax.keys.first(where: { !Self.isUnderstoodAlike($0, global: false) }) {
                throw Self.differentlyRead(key, global: false, offset: offset - Int64(meta.count))
            }
        case UInt8(ascii: "g"):
            // Tar tools disagree on whether (and how) a global record applies to the entries that
            // follow: only records that change nothing here are accepted (git archive's comment).
            var global: [String: [UInt8]] = [:]
            try parsePax(into: &global)
            pendingMetadataBytes -= Int64(meta.count)  // nothing of it is kept
            if let key = global.keys.sorted().first(where: { !Self.isUnderstoodAlike($0, global: true) }) {
                throw Self.differentlyRead(key, global: true, offset: offset - Int64(meta.count))
            }
        default:
            // GNU tar reads a long name up to its NUL, past the record's size into the padding if
            // there is none: a name without its NUL would read differently.
            guard let end = meta.firstIndex(of: 0) else {
                throw ArchiveError(
                    code: .tarMalformed, reason: "a GNU long-name record without its terminating NUL",
                    offset: offset - Int64(meta.count))
            }
            if kind == UInt8(ascii: "L") { pendingLongName = Array(meta[..<end]) } else { pendingLongLink = Array(meta[..<end]) }
        }
    }

    /// Pax keys every tar tool reads the same way (or ignores harmlessly). `GNU.sparse.*` keys are
    /// read (they make the entry a sparse file, which is refused with its name). Extended
    /// attributes are accepted only in the `user.` namespace with names of at most 255 bytes:
    /// bsdtar run as root applies the others (file capabilities such as `cap_setuid`, POSIX ACLs)
    /// or fails on them (unknown namespaces), GNU tar ignores them all. ACL records (`SCHILY.acl.*`) and file flags (`SCHILY.fflags`, which
    /// bsdtar turns into immutable or append-only files) are refused for the same reason, and so
    /// is anything else, such as `SCHILY.realsize`, that could change what another tool extracts.
    /// A global record may only carry text that changes nothing (git archive's `comment`).
    static func isUnderstoodAlike(_ key: String, global: Bool) -> Bool {
        let text: Set<String> = ["uname", "gname", "comment", "charset", "hdrcharset"]
        if text.contains(key) { return true }
        if global { return false }
        if ["path", "linkpath", "size", "mtime", "atime", "ctime", "uid", "gid"].contains(key) { return true }
        for prefix in ["SCHILY.xattr.", "LIBARCHIVE.xattr."] where key.utf8.starts(with: prefix.utf8) {
            // LIBARCHIVE.xattr names are percent-encoded: decode before comparing.
            let name = percentDecoded(Array(key.utf8.dropFirst(prefix.utf8.count)))
            return name.starts(with: "user.".utf8) && name.count > 5 && name.count <= 255
        }
        return ["GNU.sparse.", "SCHILY.dev", "SCHILY.ino", "SCHILY.nlink", "LIBARCHIVE.creationtime"]
            .contains { key.utf8.starts(with: $0.utf8) }
    }

    /// `%XX` escapes decoded (anything else kept as it is).
    static func percentDecoded(_ bytes: [UInt8]) -> [UInt8] {
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    static func differentlyRead(_ key: String, global: Bool, offset: Int64) -> ArchiveError {
        ArchiveError(
            code: .tarMalformed,
            reason: "a pax \(global ? "global " : "")record '\(Printable.escape(String(key.prefix(64))))' that tar tools read differently",
            offset: offset)
    }

    /// The header's format, from its magic: POSIX ustar (`ustar\0` + `00`, the prefix field is
    /// part of the name), GNU (`ustar  \0`, whose old sparse and multi-volume fields must be
    /// empty: bsdtar applies them, GNU tar does not), or v7 (no magic, nothing after the link
    /// name). Anything else is refused: tar tools guess differently. Returns whether it is POSIX.
    private func checkFormat(at headerOffset: Int64) throws(ArchiveError) -> Bool {
        if block[257..<265].elementsEqual("ustar\u{0}00".utf8) { return true }
        if block[257..<265].elementsEqual("ustar  \u{0}".utf8) {
            guard block[369..<500].allSatisfy({ $0 == 0 }) else {
                throw ArchiveError(
                    code: .tarMalformed, reason: "a GNU header with old sparse or multi-volume fields (tar tools read them differently)",
                    offset: headerOffset)
            }
            return false
        }
        if block[257..<512].allSatisfy({ $0 == 0 }) { return false }
        throw ArchiveError(
            code: .tarMalformed, reason: "an unknown tar header format (magic '\(Printable.escape(bytes: Array(block[257..<265])))')",
            offset: headerOffset)
    }

    /// Parses `"<len> <key>=<value>\n"` records.
    private func parsePax(into records: inout [String: [UInt8]]) throws(ArchiveError) {
        var index = 0
        let at = offset - Int64(meta.count)
        while index < meta.count {
            // No padding inside the record's size: bsdtar drops every record of such a header.
            guard let space = meta[index...].firstIndex(of: UInt8(ascii: " ")),
                let length = Self.decimal(Array(meta[index..<space])), length > 0,
                length <= Int64(meta.count - index), meta[index + Int(length) - 1] == UInt8(ascii: "\n"),
                let equals = meta[(space + 1)..<(index + Int(length))].firstIndex(of: UInt8(ascii: "="))
            else {
                throw ArchiveError(code: .tarMalformed, reason: "malformed pax record", offset: at)
            }
            let key = String(decoding: meta[(space + 1)..<equals], as: UTF8.self)
            records[key] = Array(meta[(equals + 1)..<(index + Int(length) - 1)])
            index += Int(length)
        }
    }

    private func verifyChecksum(at headerOffset: Int64) throws(ArchiveError) {
        var unsigned = 0
        var signed = 0
        for (index, byte) in block.enumerated() {
            let value = (148..<156).contains(index) ? 0x20 : byte
            unsigned += Int(value)
            signed += Int(Int8(bitPattern: value))
        }
        let stored = try number(148, 8, field: "checksum", at: headerOffset, octalOnly: true)
        guard stored == Int64(unsigned) || stored == Int64(signed) else {
            throw ArchiveError(
                code: .tarChecksum,
                reason: "tar header checksum mismatch: expected \(stored), computed \(unsigned)",
                path: Printable.escape(bytes: field(0, 100)), offset: headerOffset)
        }
    }

    private func field(_ start: Int, _ length: Int) -> [UInt8] {
        Array(block[start..<(start + length)].prefix { $0 != 0 })
    }

    /// An octal field (NUL/space terminated) or a GNU base-256 field.
    private func number(_ start: Int, _ length: Int, field name: String, at headerOffset: Int64, octalOnly: Bool = false) throws(ArchiveError) -> Int64 {
        let bytes = block[start..<(start + length)]
        if let first = bytes.first, first & 0x80 != 0 {
            // Tar tools read a checksum as octal only: a base-256 one makes them skip the header.
            guard !octalOnly else {
                throw ArchiveError(code: .tarMalformed, reason: "the \(name) field is not octal", offset: headerOffset)
            }
            // Base-256: two's complement big-endian; 0xff marks a negative number.
            guard first == 0x80 || first == 0xff else {
                throw ArchiveError(code: .tarMalformed, reason: "bad base-256 \(name) field", offset: headerOffset)
            }
            let negative = first == 0xff
            var value: UInt64 = 0
            for byte in bytes.dropFirst() {
                guard value >> 56 == 0 || (negative && value >> 56 == 0xff) else {
                    throw ArchiveError(code: .tarMalformed, reason: "\(name) field overflows", offset: headerOffset)
                }
                value = value << 8 | UInt64(negative ? ~byte : byte)
            }
            guard value <= UInt64(Int64.max) else {
                throw ArchiveError(code: .tarMalformed, reason: "\(name) field overflows", offset: headerOffset)
            }
            return negative ? -Int64(value) - 1 : Int64(value)
        }
        // GNU tar skips one leading NUL, then spaces, and refuses a field with nothing after
        // them ("Blanks in header where numeric value expected"); bsdtar reads 0.
        let afterNUL = bytes.first == 0 ? bytes.dropFirst() : bytes
        if !afterNUL.isEmpty, afterNUL.allSatisfy({ $0 == UInt8(ascii: " ") }) {
            throw ArchiveError(code: .tarMalformed, reason: "the \(name) field is blank", offset: headerOffset)
        }
        var value: Int64 = 0
        var index = bytes.startIndex
        while index < bytes.endIndex, bytes[index] == UInt8(ascii: " ") { index += 1 }
        while index < bytes.endIndex, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[index]) {
            guard value < (Int64.max >> 3) else {
                throw ArchiveError(code: .tarMalformed, reason: "\(name) field overflows", offset: headerOffset)
            }
            value = value << 3 | Int64(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        while index < bytes.endIndex {
            guard bytes[index] == 0 || bytes[index] == UInt8(ascii: " ") else {
                throw ArchiveError(
                    code: .tarMalformed, reason: "\(name) field is not an octal number", offset: headerOffset)
            }
            index += 1
        }
        return value
    }

    /// A pax time, `[-]seconds[.fraction]`, as whole seconds; nil when the seconds are not a
    /// number (GNU tar and bsdtar both ignore what follows the point).
    static func time(_ bytes: [UInt8]) -> Int64? {
        decimal(Array(bytes.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false).first ?? []))
    }

    /// A plain decimal number, optionally negative; nil when it is not one or does not fit an `Int64`.
    static func decimal(_ bytes: [UInt8]) -> Int64? {
        var digits = bytes[...]
        var negative = false
        if digits.first == UInt8(ascii: "-") {
            negative = true
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return negative ? -value : value
    }
}
