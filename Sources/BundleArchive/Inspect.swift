public import BundleCore

/// A bundle's identity and table of contents.
public struct BundleInspection: Sendable, Equatable {
    /// SHA-256 of the compressed bytes.
    public var contentHash: ContentHash
    /// Compressed size in bytes.
    public var size: Int64
    /// Decompressed tar size in bytes.
    public var decompressedSize: Int64
    /// The accepted entries, in archive order.
    public var entries: [ArchiveEntry]
    /// The path of the manifest found (`manifest.json`, or `<dir>/manifest.json`), if any.
    public var manifestPath: String?
    /// The manifest's bytes, if one was found and it is at most ``BundleInspector/maxManifestBytes``.
    public var manifest: [UInt8]?
    /// The manifest's size, also when it was too large to capture.
    public var manifestSize: Int64?

    /// Where the manifest, module and UI are.
    public var layout: BundleLayout { BundleLayout(manifestPath: manifestPath) }
}

/// Reads a whole bundle once, collecting its entries and manifest.
public final class BundleInspector: ArchiveVisitor {
    /// The largest manifest captured in memory (1 MiB).
    public static let maxManifestBytes: Int64 = 1 << 20

    /// The entries seen so far.
    public private(set) var entries: [ArchiveEntry] = []
    /// The manifest path found, if any.
    public private(set) var manifestPath: String?
    /// The captured manifest bytes.
    public private(set) var manifest: [UInt8]?
    /// Where the manifest, module and UI are (final once the whole archive was read).
    public var layout: BundleLayout { BundleLayout(manifestPath: manifestPath) }
    /// The manifest's declared size.
    public private(set) var manifestSize: Int64?
    private var capturing = false

    /// Creates a collector.
    public init() {}

    /// Records the entry; starts capturing the first manifest.
    public func visitEntry(_ entry: ArchiveEntry) throws(ArchiveError) {
        entries.append(entry)
        if entry.kind == .file, manifestPath == nil, BundleLayout.isManifestPath(entry.path) {
            manifestPath = entry.path
            manifestSize = entry.size
            capturing = entry.size <= Self.maxManifestBytes
            if capturing {
                manifest = []
                manifest?.reserveCapacity(Int(entry.size))
            }
        }
    }

    /// Captures manifest bytes.
    public func visitData(_ chunk: UnsafeRawBufferPointer) throws(ArchiveError) {
        if capturing { manifest?.append(contentsOf: chunk) }
    }

    /// Ends capture.
    public func visitEntryEnd() throws(ArchiveError) { capturing = false }

    /// Inspects the bundle file at `path`, hashing it in the same pass.
    public static func inspect(fileAt path: String, limits: ArchiveLimits = .default) throws(ArchiveError) -> BundleInspection {
        let collector = BundleInspector()
        let summary = try BundleReader.read(fileAt: path, visitor: collector, limits: limits, computeHash: true)
        return BundleInspection(
            contentHash: summary.contentHash!, size: summary.compressedBytes,
            decompressedSize: summary.decompressedBytes, entries: collector.entries,
            manifestPath: collector.manifestPath, manifest: collector.manifest, manifestSize: collector.manifestSize)
    }
}
