/// Builds tar headers: POSIX ustar, with a pax `x` record only where ustar cannot hold the name
/// (or the size or time). Headers are deterministic: owner 0:0, empty owner names, the given mode
/// and time, no device numbers.
public enum TarWriter {
    /// The largest value of an 11-digit octal field.
    static let maxOctal11: Int64 = 0o77777777777

    /// The bytes of the header(s) for one entry.
    /// - Parameters:
    ///   - path: the entry path, with a trailing `/` for directories.
    ///   - isDirectory: write typeflag `5` instead of `0`.
    ///   - size: the data size (0 for directories).
    ///   - mode: the permission bits.
    ///   - mtime: seconds since the epoch.
    public static func header(path: [UInt8], isDirectory: Bool, size: Int64, mode: UInt32, mtime: Int64) -> [UInt8] {
        var pax: [(String, [UInt8])] = []
        var name = path
        var prefix: [UInt8] = []
        if path.count > 100 {
            if let split = splitPoint(path) {
                prefix = Array(path[..<split])
                name = Array(path[(split + 1)...])
            } else {
                pax.append(("path", path))
                name = Array(path.suffix(99))
            }
        }
        var sizeField = size
        if size > maxOctal11 {
            pax.append(("size", Array(String(size).utf8)))
            sizeField = 0
        }
        var timeField = mtime
        if mtime < 0 || mtime > maxOctal11 {
            pax.append(("mtime", Array(String(mtime).utf8)))
            timeField = 0
        }
        var out: [UInt8] = []
        if !pax.isEmpty {
            let records = pax.flatMap { paxRecord(key: $0.0, value: $0.1) }
            out += ustarBlock(
                name: Array("././@PaxHeader".utf8), prefix: [], typeflag: UInt8(ascii: "x"),
                size: Int64(records.count), mode: 0o644, mtime: timeField)
            out += records
            out += [UInt8](repeating: 0, count: Int(padding(Int64(records.count))))
        }
        out += ustarBlock(
            name: name, prefix: prefix, typeflag: isDirectory ? UInt8(ascii: "5") : UInt8(ascii: "0"),
            size: sizeField, mode: mode, mtime: timeField)
        return out
    }

    /// The two zero blocks that end an archive.
    public static let endOfArchive = [UInt8](repeating: 0, count: 1024)

    /// Bytes of zero padding after `size` bytes of data.
    public static func padding(_ size: Int64) -> Int64 { (512 - size % 512) % 512 }

    /// The first `/` such that the part after it fits the 100-byte name field and the part before
    /// it fits the 155-byte prefix field.
    static func splitPoint(_ path: [UInt8]) -> Int? {
        for index in path.indices where path[index] == UInt8(ascii: "/") {
            let nameLength = path.count - index - 1
            if nameLength <= 100 && nameLength > 0 {
                return index <= 155 && index > 0 ? index : nil
            }
        }
        return nil
    }

    /// `"<len> key=value\n"` where `len` counts the whole record including itself.
    static func paxRecord(key: String, value: [UInt8]) -> [UInt8] {
        let body = 1 + key.utf8.count + 1 + value.count + 1  // " " key "=" value "\n"
        var length = body + 1
        while String(length).utf8.count + body != length { length = String(length).utf8.count + body }
        return Array("\(length) \(key)=".utf8) + value + [UInt8(ascii: "\n")]
    }

    static func ustarBlock(name: [UInt8], prefix: [UInt8], typeflag: UInt8, size: Int64, mode: UInt32, mtime: Int64) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: some Collection<UInt8>, at offset: Int) {
            for (index, byte) in bytes.enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int64, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name.prefix(100), at: 0)
        put(octal(Int64(mode & 0o7777), width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(mtime, width: 12), at: 136)
        block[156] = typeflag
        put("ustar\0".utf8, at: 257)
        put("00".utf8, at: 263)
        put(octal(0, width: 8), at: 329)
        put(octal(0, width: 8), at: 337)
        put(prefix.prefix(155), at: 345)
        put([UInt8](repeating: 0x20, count: 8), at: 148)
        let sum = block.reduce(0) { $0 + Int64($1) }
        put(octal(sum, width: 7) + [0x20], at: 148)
        return block
    }
}
