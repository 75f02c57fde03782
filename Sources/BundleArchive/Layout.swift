import BundleCore

/// Where a bundle keeps its parts, decided once from its entries and used by every reader (the
/// verifier, the host, the runner cache), so they cannot disagree:
/// - the manifest: the first `manifest.json` in archive order that sits at the root or exactly
///   one folder down (`<folder>/manifest.json`), as Alga's finalize reads it;
/// - the module: `dist/main.wasm` beside the manifest (`<folder>/dist/main.wasm`);
/// - the UI: the files under `ui/` beside the manifest (`<folder>/ui/`).
///
/// Without a manifest the parts are looked for at the root. Every rule works on the path's bytes.
public struct BundleLayout: Sendable, Equatable, Codable {
    /// The manifest's path in the archive, if there is one.
    public var manifestPath: String?
    /// The folder of the manifest with a trailing `/`, or `""` at the root.
    public var base: String

    /// The layout of a bundle whose manifest is at `manifestPath` (nil: none).
    public init(manifestPath: String?) {
        self.manifestPath = manifestPath
        base = manifestPath.flatMap(BytePath.parent).map { $0 + "/" } ?? ""
    }

    /// The module's path: `<base>dist/main.wasm`.
    public var modulePath: String { base + "dist/main.wasm" }
    /// The UI folder's path with a trailing `/`: `<base>ui/`.
    public var uiPrefix: String { base + "ui/" }

    /// The path of a UI file relative to ``uiPrefix``, or nil when `entryPath` is not under it.
    public func uiRelativePath(_ entryPath: String) -> String? {
        guard BytePath.hasPrefix(entryPath, uiPrefix), entryPath.utf8.count > uiPrefix.utf8.count else { return nil }
        return BytePath.dropPrefix(entryPath, bytes: uiPrefix.utf8.count)
    }

    /// Whether `path` is where a manifest may be: `manifest.json` or `<folder>/manifest.json`.
    public static func isManifestPath(_ path: String) -> Bool {
        let segments = BytePath.segments(path)
        guard let last = segments.last, last.elementsEqual("manifest.json".utf8) else { return false }
        return segments.count == 1 || (segments.count == 2 && !segments[0].isEmpty)
    }

    /// Whether `path` may be a UI file of some layout (under `ui/` or `<folder>/ui/`): for
    /// visitors that meet files before they know where the manifest is.
    public static func isPossibleUIPath(_ path: String) -> Bool {
        let segments = BytePath.segments(path)
        if segments.count >= 2, segments[0].elementsEqual("ui".utf8) { return true }
        return segments.count >= 3 && segments[1].elementsEqual("ui".utf8)
    }
}
