/// Bounds applied while reading (and packing) an archive, so a hostile bundle cannot exhaust
/// memory, disk or time. Every refusal names the property that was exceeded.
public struct ArchiveLimits: Sendable, Equatable {
    /// Largest compressed input, in bytes. Default 200 MiB (209,715,200), Alga's upload cap.
    public var compressedBytes: Int64
    /// Largest total decompressed tar stream, in bytes. Default 1 GiB.
    public var decompressedBytes: Int64
    /// Most entries (files and directories). Default 10,000.
    public var entryCount: Int
    /// Longest entry path, in UTF-8 bytes. Default 1,024.
    public var pathLength: Int
    /// Largest zstd window accepted, as a power of two. Default 27 (128 MiB), zstd's own default.
    public var windowLogMax: Int
    /// Largest pax or GNU long-name record, in bytes. Default 1 MiB.
    public var metadataBytes: Int
    /// Most bytes of pax and GNU long-name records in the whole archive. Default 16 MiB: a pax
    /// header of a few hundred bytes for each of 10,000 entries fits many times over, while an
    /// archive cannot make a reader parse a megabyte of records before each of its entries.
    public var archiveMetadataBytes: Int64

    /// Creates limits; every parameter defaults to the documented value.
    public init(
        compressedBytes: Int64 = 209_715_200,
        decompressedBytes: Int64 = 1 << 30,
        entryCount: Int = 10_000,
        pathLength: Int = 1_024,
        windowLogMax: Int = 27,
        metadataBytes: Int = 1 << 20,
        archiveMetadataBytes: Int64 = 16 << 20
    ) {
        self.compressedBytes = compressedBytes
        self.decompressedBytes = decompressedBytes
        self.entryCount = entryCount
        self.pathLength = pathLength
        self.windowLogMax = windowLogMax
        self.metadataBytes = metadataBytes
        self.archiveMetadataBytes = archiveMetadataBytes
    }

    /// The defaults.
    public static let `default` = ArchiveLimits()
}
