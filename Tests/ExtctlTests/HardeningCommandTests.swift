import BundleCore
import CoreFoundation
import Foundation
import Testing
import TestSupport

/// The defects of issue 10 as a user of `extctl` meets them: escapes, crashes on numbers, keys,
/// output, sidecars, bounded inputs. Each runs the real binary.
@Suite struct HardeningCommandTests {
    /// Writes `bad.tar.zst` holding `manifest.json` and a file named `name` (the name's bytes as
    /// given, through Python's tarfile, an independent writer).
    static func craft(_ scratch: Scratch, name: String) throws {
        let literal = name.unicodeScalars.map { String(format: "\\U%08x", $0.value) }.joined()
        try TestSupport.sh(
            """
            python3 - <<'EOF'
            import io, tarfile
            out = io.BytesIO()
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name, data in (("manifest.json", b"{}"), ("\(literal)", b"escaped")):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            open("bad.tar", "wb").write(out.getvalue())
            EOF
            zstd -q -f bad.tar -o bad.tar.zst
            """, cwd: scratch.path)
    }

    @Test(arguments: ["../\u{301}x.txt", "../\u{200D}x.txt", "/\u{301}x/y.txt", "ui/\u{600}/../../x.txt"])
    func unpackNeverWritesOutsideItsTarget(name: String) throws {
        let scratch = try Scratch("unpack-escape")
        try Self.craft(scratch, name: name)
        try FileManager.default.createDirectory(atPath: scratch("inner"), withIntermediateDirectories: true)
        let before = TestSupport.rawTree(scratch.path)
        let result = try extctl("unpack", scratch("bad.tar.zst"), scratch("inner/out"))
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("ARCHIVE_UNSAFE_PATH"), "\(result.stderr)")
        #expect(TestSupport.rawTree(scratch.path) == before)
        // The tar tools do not write it there either.
        #expect(!FileManager.default.fileExists(atPath: scratch("\u{301}x.txt")))
    }

    @Test func numbersFromTheCommandLineNeverCrash() throws {
        let scratch = try Scratch("numbers")
        try TestSupport.write(Array(#"{"name":"a"}"#.utf8), to: "tree/manifest.json", in: scratch.path)
        #expect(try extctl("pack", scratch("tree"), "-o", scratch("b.tar.zst"), "--level", "1").status == 0)
        for arguments in [
            ["unpack", scratch("b.tar.zst"), scratch("out"), "--window-log-max", "99999999999"],
            ["unpack", scratch("b.tar.zst"), scratch("out"), "--window-log-max", "9"],
            ["inspect", scratch("b.tar.zst"), "--window-log-max=9"],
            ["inspect", scratch("b.tar.zst"), "--window-log-max=32"],
            ["inspect", scratch("b.tar.zst"), "--window-log-max=-1"],
            ["inspect", scratch("b.tar.zst"), "--window-log-max=100"],
            ["pack", scratch("tree"), "-o", scratch("c.tar.zst"), "--threads", "99999999999"],
            ["pack", scratch("tree"), "-o", scratch("c.tar.zst"), "--level", "99999999999"],
        ] {
            let result = try TestSupport.run([TestSupport.extctl] + arguments)
            #expect(result.status == 1 || result.status == 2, "\(arguments): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("error"), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("double free") && !result.stderr.contains("Fatal error"), "\(arguments): \(result.stderr)")
        }
        // No temporary folder or partial output is left behind.
        #expect(TestSupport.listing(scratch.path) == ["b.tar.zst", "b.tar.zst.sha256", "tree"])
        for (epoch, code) in [("99999999999999", "PACK_INVALID_OPTION"), ("8589934592", "PACK_INVALID_OPTION"), ("-5", "SOURCE_DATE_EPOCH")] {
            let result = try extctl("pack", scratch("tree"), "-o", scratch("d.tar.zst"), environment: ["SOURCE_DATE_EPOCH": epoch])
            #expect(result.status == 1 && result.stderr.contains(code), "\(epoch): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: scratch("d.tar.zst")))
    }

    @Test func keygenCreatesThePrivateKeyPrivateAndNeverReplacesAFile() throws {
        let scratch = try Scratch("keygen")
        let made = try extctl("keygen", "-o", scratch("k.pem"))
        #expect(made.status == 0, "\(made.stderr)")
        var info = stat()
        #expect(stat(scratch("k.pem"), &info) == 0 && info.st_mode & 0o777 == 0o600)
        // An existing file, or a symlink planted where the key goes, is never written through.
        try Data("precious".utf8).write(to: URL(fileURLWithPath: scratch("taken.pem")))
        symlink(scratch("target.txt"), scratch("link.pem"))
        for output in ["k.pem", "taken.pem", "link.pem"] {
            let again = try extctl("keygen", "-o", scratch(output))
            #expect(again.status == 1 && again.stderr.contains("KEY_EXISTS"), "\(output): \(again.stderr)")
        }
        #expect(try String(contentsOfFile: scratch("taken.pem"), encoding: .utf8) == "precious")
        #expect(!FileManager.default.fileExists(atPath: scratch("target.txt")))
    }

    @Test func inspectPrintsHostileNamesAndManifestsEscaped() throws {
        let scratch = try Scratch("inspect-escape")
        try TestSupport.sh(
            #"""
            python3 - <<'EOF'
            import io, tarfile
            out = io.BytesIO()
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name, data in (("manifest.json", b'{"name":"\x1b[31mred\x1b[0m","x":"\xe2\x80\xae"}'), ("ui/\u202emanifest.js", b"x")):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            open("b.tar", "wb").write(out.getvalue())
            EOF
            zstd -q -f b.tar -o b.tar.zst
            """#, cwd: scratch.path)
        let result = try extctl("inspect", scratch("b.tar.zst"))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x202e }, "\(result.stdout.debugDescription)")
        #expect(result.stdout.contains("\\u{1B}[31mred") && result.stdout.contains("ui/\\u{202E}manifest.js"))
        // `--json` stays JSON: Python reads it back, names and texts intact, nothing raw printed.
        try TestSupport.write(Array(#"{"name":"a\#u{200B}b\#u{E000}","publisher":"p\#u{85}q\#u{1F600}","version":"1.0.0","runtime":"wasm-js@1"}"#.utf8), to: "tree/manifest.json", in: scratch.path)
        try TestSupport.write(Array("x".utf8), to: "tree/ui/\u{202E}\u{2028}.txt", in: scratch.path)
        #expect(try extctl("pack", scratch("tree"), "-o", scratch("p.tar.zst"), "--level", "1").status == 0)
        for arguments in [["inspect", scratch("b.tar.zst"), "--json"], ["inspect", scratch("p.tar.zst"), "--json"], ["verify", scratch("p.tar.zst"), "--json"]] {
            let json = try extctl(arguments)
            #expect(json.status == 0, "\(arguments): \(json.stderr)")
            #expect(!json.stdout.unicodeScalars.contains { [0x1b, 0x202e, 0x200b, 0xe000, 0x85, 0x2028].contains($0.value) }, "\(json.stdout.debugDescription)")
            let parsed = try TestSupport.run(["python3", "-c", "import json,sys; d=json.load(sys.stdin); print(ascii(d))"], stdin: Data(json.stdout.utf8))
            #expect(parsed.status == 0, "\(arguments): \(parsed.stderr)")
            if arguments[0] == "inspect", arguments[1].hasSuffix("p.tar.zst") {
                #expect(parsed.stdout.contains(#"ui/\u202e\u2028.txt"#), "\(parsed.stdout)")
            }
            if arguments[0] == "inspect", arguments[1].hasSuffix("p.tar.zst") {
                #expect(parsed.stdout.contains(#"a\u200bb\ue000"#) && parsed.stdout.contains(#"p\x85q\U0001f600"#), "\(parsed.stdout)")
            }
        }
    }

    @Test func signingThenPackingAgainKeepsTheBundle() throws {
        let scratch = try Scratch("sign-repack")
        try TestSupport.write(Array(#"{"name":"com.acme.x","publisher":"Acme","version":"1.0.0","runtime":"wasm-js@1"}"#.utf8), to: "ext/manifest.json", in: scratch.path)
        try TestSupport.write([0, 97, 115, 109], to: "ext/dist/main.wasm", in: scratch.path)
        let first = try extctl("pack", scratch("ext"), "--level", "1")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try extctl("keygen", "-o", scratch("k.pem")).status == 0)
        #expect(try extctl("sign", scratch("ext/dist/bundle.tar.zst"), "--key", scratch("k.pem")).status == 0)
        // An interrupted pack's temporary file beside the output stays out too.
        try Data("partial".utf8).write(to: URL(fileURLWithPath: scratch("ext/dist/.bundle.tar.zst.tmp-Xy12Zq")))
        let second = try extctl("pack", scratch("ext"), "--level", "1")
        #expect(second.stdout.prefix(71) == first.stdout.prefix(71), "\(second.stdout) vs \(first.stdout)")
        let verified = try extctl("verify", scratch("ext/dist/bundle.tar.zst"), "--trust-bundle", scratch("k.pub.pem"))
        #expect(verified.status == 0, "\(verified.stderr)")
        // Packed elsewhere, the bundle in dist/ (and its sidecars) still stays out.
        let elsewhere = try extctl("pack", scratch("ext"), "--level", "1", "-o", scratch("out/b.tar.zst"))
        #expect(elsewhere.stdout.prefix(71) == first.stdout.prefix(71), "\(elsewhere.stdout) vs \(first.stdout)")
        // A fresh tree packs the same into dist/ as elsewhere (dist/ is made after reading the tree).
        try TestSupport.write(Array(#"{"name":"fresh"}"#.utf8), to: "fresh/manifest.json", in: scratch.path)
        let inPlace = try extctl("pack", scratch("fresh"), "--level", "1")
        let outside = try extctl("pack", scratch("fresh"), "--level", "1", "-o", scratch("fresh.tar.zst"))
        #expect(inPlace.status == 0 && inPlace.stdout.prefix(71) == outside.stdout.prefix(71), "\(inPlace.stdout) vs \(outside.stdout)")
        // A missing tree is refused, and nothing is created for it.
        let missing = try extctl("pack", scratch("missing"))
        #expect(missing.status == 1 && !FileManager.default.fileExists(atPath: scratch("missing")), "\(missing.stderr)")
        // Signing never writes a file verify would refuse: 64 signatures at most.
        for index in 0..<64 {
            #expect(try extctl("keygen", "-o", scratch("k\(index).pem")).status == 0)
            #expect(try extctl("sign", scratch("fresh.tar.zst"), "--key", scratch("k\(index).pem")).status == 0)
        }
        #expect(try extctl("keygen", "-o", scratch("k64.pem")).status == 0)
        let sixtyFifth = try extctl("sign", scratch("fresh.tar.zst"), "--key", scratch("k64.pem"))
        #expect(sixtyFifth.status == 1 && sixtyFifth.stderr.contains("SIGNATURE_MALFORMED"), "\(sixtyFifth.stderr)")
        #expect(try extctl("verify", scratch("fresh.tar.zst")).status == 0)
        // An output folder that cannot be made names the real cause.
        let blocked = try extctl("pack", scratch("ext"), "-o", scratch("ext/manifest.json/x.tar.zst"))
        #expect(blocked.status == 1 && blocked.stderr.contains("Not a directory"), "\(blocked.stderr)")
    }

    @Test func packRefusesWhatReadingWouldRefuse() throws {
        let scratch = try Scratch("pack-names")
        try TestSupport.write(Array("{}".utf8), to: "nfc/manifest.json", in: scratch.path)
        try TestSupport.write([1], to: "nfc/ui/caf\u{E9}.js", in: scratch.path)
        try TestSupport.write([2], to: "nfc/ui/cafe\u{301}.js", in: scratch.path)
        let result = try extctl("pack", scratch("nfc"), "-o", scratch("out.tar.zst"))
        #expect(result.status == 1 && result.stderr.contains("ARCHIVE_DUPLICATE_ENTRY"), "\(result.stderr)")
        try TestSupport.write(Array("{}".utf8), to: "ctl/manifest.json", in: scratch.path)
        try TestSupport.write([1], to: "ctl/ui/new\nline.js", in: scratch.path)
        let control = try extctl("pack", scratch("ctl"), "-o", scratch("out.tar.zst"))
        #expect(control.status == 1 && control.stderr.contains("ARCHIVE_INVALID_PATH") && !control.stderr.contains("\nline"), "\(control.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch("out.tar.zst")))
    }

    @Test func aKilledUnpackLeavesNothingForever() throws {
        let scratch = try Scratch("unpack-killed")
        try TestSupport.write(Array("{}".utf8), to: "tree/manifest.json", in: scratch.path)
        #expect(try extctl("pack", scratch("tree"), "-o", scratch("b.tar.zst"), "--level", "1").status == 0)
        // What a SIGKILLed unpack leaves: a staging folder named with its (dead) pid.
        let dead = scratch(".out.extract-999999-AbC123")
        let alive = scratch(".out.extract-1-ZzZ999")  // pid 1 is alive: kept
        let foreign = scratch(".mine.extract-999999-AbC123")  // another target's name: kept
        for folder in [dead, alive, foreign] { try FileManager.default.createDirectory(atPath: folder + "/ui", withIntermediateDirectories: true) }
        #expect(try extctl("unpack", scratch("b.tar.zst"), scratch("out")).status == 0)
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: alive) && FileManager.default.fileExists(atPath: foreign))
    }

    @Test func storeKeysAndBasesAreCheckedAsBytes() throws {
        let scratch = try Scratch("store-bytes")
        try TestSupport.write(Array("{}".utf8), to: "tree/manifest.json", in: scratch.path)
        #expect(try extctl("pack", scratch("tree"), "-o", scratch("b.tar.zst"), "--level", "1").status == 0)
        try FileManager.default.createDirectory(atPath: scratch("root/store"), withIntermediateDirectories: true)
        let before = TestSupport.rawTree(scratch.path)
        for base in ["../\u{301}x", "../\u{200D}/x", "a/../../x", "\u{600}/../../x"] {
            let put = try extctl("store", "put-bundle", scratch("b.tar.zst"), "--store", scratch("root/store"), "--base", base)
            #expect(put.status == 1 && put.stderr.contains("STORE_CONFIGURATION"), "\(base.debugDescription): \(put.stderr)")
        }
        for prefix in ["../\u{301}x", "../", "a/../\u{301}"] {
            let list = try extctl("store", "ls", "--store", scratch("root/store"), "--prefix", prefix)
            #expect(list.status == 1 && list.stderr.contains("STORE_INVALID_KEY"), "\(prefix.debugDescription): \(list.stderr)")
        }
        #expect(TestSupport.rawTree(scratch.path) == before)
        let capped = try extctl("store", "put-bundle", scratch("b.tar.zst"), "--store", scratch("root/store"), "--max-bytes", "10")
        #expect(capped.status == 1 && capped.stderr.contains("STORE_TOO_LARGE"), "\(capped.stderr)")
    }

    @Test func aFolderThatIsNotACacheIsNeverCleaned() throws {
        let scratch = try Scratch("not-a-cache")
        let home = scratch("home")
        try FileManager.default.createDirectory(atPath: home + "/" + String(repeating: "a", count: 64), withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: URL(fileURLWithPath: home + "/" + String(repeating: "a", count: 64) + "/data.txt"))
        try Data("keep".utf8).write(to: URL(fileURLWithPath: home + "/.tmp-notes"))
        try Data("keep".utf8).write(to: URL(fileURLWithPath: home + "/notes.txt"))
        let before = TestSupport.rawTree(home)
        let result = try extctl("cache", "stats", "--cache", home, "--data", scratch("data"))
        #expect(result.status == 1 && result.stderr.contains("CACHE_ROOT_NOT_A_CACHE"), "\(result.stderr)")
        #expect(TestSupport.rawTree(home) == before)
        // Nor is a folder of 64-hex names only (a store's sha256/ folder): it is not marked.
        let storeLike = scratch("storelike")
        try FileManager.default.createDirectory(atPath: storeLike + "/" + String(repeating: "b", count: 64), withIntermediateDirectories: true)
        try Data("bundle".utf8).write(to: URL(fileURLWithPath: storeLike + "/" + String(repeating: "b", count: 64) + "/bundle.tar.zst"))
        let storeBefore = TestSupport.rawTree(storeLike)
        let storeResult = try extctl("cache", "stats", "--cache", storeLike, "--data", scratch("data"))
        #expect(storeResult.status == 1 && storeResult.stderr.contains("CACHE_ROOT_NOT_A_CACHE"), "\(storeResult.stderr)")
        #expect(TestSupport.rawTree(storeLike) == storeBefore)
        // A new folder becomes a cache (marked), and stays one.
        #expect(try extctl("cache", "stats", "--cache", scratch("cache"), "--data", scratch("data")).status == 0)
        #expect(FileManager.default.fileExists(atPath: scratch("cache/.extbundles-cache")))
        #expect(try extctl("cache", "stats", "--cache", scratch("cache"), "--data", scratch("data")).status == 0)
    }

    @Test func hostileTextNeverForgesALineOfOutput() throws {
        let scratch = try Scratch("forge")
        let manifest = #"{"name":"evil\nextctl: error: FAKE\u001b[31m\tx","publisher":"pub\nFAKE LINE","version":"1.0.0","runtime":"wasm-js@1","bogus\nkey":1}"#
        try TestSupport.write(Array(manifest.utf8), to: "m.json", in: scratch.path)
        let validate = try extctl("manifest", "validate", scratch("m.json"))
        #expect(validate.status == 1)
        #expect(!validate.stdout.contains("\nkey") && !validate.stdout.contains("\u{1B}"), "\(validate.stdout.debugDescription)")
        #expect(validate.stdout.split(separator: "\n").count == 1, "\(validate.stdout.debugDescription)")
        // The same manifest is not published: control characters never enter a publisher or a
        // name (they are the extension's identity).
        try TestSupport.write(Array(manifest.replacingOccurrences(of: #","bogus\nkey":1"#, with: "").utf8), to: "ext/manifest.json", in: scratch.path)
        #expect(try extctl("pack", scratch("ext"), "--level", "1").status == 0)
        let refused = try extctl("publish", scratch("ext/dist/bundle.tar.zst"), "--data", scratch("data"))
        #expect(refused.status == 1 && refused.stderr.contains("must not contain control characters"), "\(refused.stderr)")
        // Invisible format characters are allowed there, and listed escaped.
        let invisible = #"{"name":"evil\u202e\u200bname","publisher":"pub\u2028x","version":"1.0.0","runtime":"wasm-js@1"}"#
        try TestSupport.write(Array(invisible.utf8), to: "ext/manifest.json", in: scratch.path)
        #expect(try extctl("pack", scratch("ext"), "--level", "1").status == 0)
        #expect(try extctl("publish", scratch("ext/dist/bundle.tar.zst"), "--data", scratch("data")).status == 0)
        let listed = try extctl("ls", "--data", scratch("data"))
        #expect(listed.stdout.split(separator: "\n").count == 1, "\(listed.stdout.debugDescription)")
        #expect(!listed.stdout.unicodeScalars.contains { [0x202e, 0x200b, 0x2028].contains($0.value) }, "\(listed.stdout.debugDescription)")
        // A store URL with a host names no local folder.
        let hosted = try extctl("store", "ls", "--store", "file://host/store")
        #expect(hosted.status == 1 && hosted.stderr.contains("STORE_CONFIGURATION"), "\(hosted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "host"))
    }

    /// Inputs read whole are bounded before they are read: a huge signature file, manifest or
    /// trust bundle is refused by its size in a few MiB of memory.
    @Test func hugeInputsAreRefusedByTheirSize() throws {
        let scratch = try Scratch("huge")
        try TestSupport.write(Array(#"{"name":"a"}"#.utf8), to: "tree/manifest.json", in: scratch.path)
        #expect(try extctl("pack", scratch("tree"), "-o", scratch("b.tar.zst"), "--level", "1").status == 0)
        try TestSupport.sh("truncate -s 100M big.sig && truncate -s 300M big.json && truncate -s 100M trust.pem", cwd: scratch.path)
        for (arguments, code) in [
            (["verify", scratch("b.tar.zst"), "--signature", scratch("big.sig")], "SIGNATURE_MALFORMED"),
            (["manifest", "validate", scratch("big.json")], "larger than"),
            (["verify", scratch("b.tar.zst"), "--trust-bundle", scratch("trust.pem")], "TRUST_BUNDLE_INVALID"),
        ] {
            let timed = try TestSupport.run(["/usr/bin/time", "-f", "RSS %M", TestSupport.extctl] + arguments)
            #expect(timed.status == 1, "\(arguments): \(timed.stderr)")
            #expect((timed.stdout + timed.stderr).contains(code), "\(arguments): \(timed.stdout) \(timed.stderr)")
            let rss = timed.stderr.split(separator: "\n").last { $0.hasPrefix("RSS ") }.flatMap { Int($0.dropFirst(4)) } ?? .max
            #expect(rss < 96 * 1024, "\(arguments): \(rss) KiB")
        }
        // Many signatures: refused by size, or by count, not checked one by one.
        let entry = #"{"algorithm":"ecdsa-p256-sha256","signature":"MEUCIQ=="}"#
        for count in [20_000, 100] {
            try Data((#"{"signatures":["# + Array(repeating: entry, count: count).joined(separator: ",") + "]}").utf8)
                .write(to: URL(fileURLWithPath: scratch("many.sig")))
            let many = try extctl("verify", scratch("b.tar.zst"), "--signature", scratch("many.sig"))
            #expect(many.status == 1 && many.stderr.contains("SIGNATURE_MALFORMED"), "\(count): \(many.stderr)")
            #expect(many.stderr.contains(count == 100 ? "more than 64 signatures" : "larger than"), "\(count): \(many.stderr)")
        }
    }

    /// A FIFO (or a device) where a side file is looked up or named never hangs a command: the
    /// implicit `BUNDLE.sig` must be a regular file, and named inputs are opened without waiting
    /// for a writer.
    @Test func aFIFOWhereAFileIsReadNeverHangs() throws {
        let scratch = try Scratch("fifo")
        try TestSupport.write(Array(#"{"name":"a"}"#.utf8), to: "tree/manifest.json", in: scratch.path)
        #expect(try extctl("pack", scratch("tree"), "-o", scratch("b.tar.zst"), "--level", "1").status == 0)
        #expect(try extctl("keygen", "-o", scratch("k.pem")).status == 0)
        try TestSupport.sh("mkfifo b.tar.zst.sig other.fifo", cwd: scratch.path)
        for arguments in [
            ["verify", scratch("b.tar.zst")], ["sign", scratch("b.tar.zst"), "--key", scratch("k.pem")],
            ["publish", scratch("b.tar.zst"), "--data", scratch("data")],
        ] {
            let result = try TestSupport.run(["timeout", "20", TestSupport.extctl] + arguments)
            #expect(result.status == 1, "\(arguments): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("SIGNATURE_MALFORMED") && result.stderr.contains("not a regular file"), "\(arguments): \(result.stderr)")
        }
        try FileManager.default.removeItem(atPath: scratch("b.tar.zst.sig"))
        for (arguments, code) in [
            (["verify", scratch("b.tar.zst"), "--trust-bundle", scratch("other.fifo")], "TRUST_BUNDLE_INVALID"),
            (["verify", scratch("b.tar.zst"), "--signature", scratch("other.fifo")], "SIGNATURE_MALFORMED"),
            (["manifest", "validate", scratch("other.fifo")], "Unexpected end of JSON input"),
        ] {
            let result = try TestSupport.run(["timeout", "20", TestSupport.extctl] + arguments)
            #expect(result.status == 1, "\(arguments): \(result.status) \(result.stderr)")
            #expect((result.stdout + result.stderr).contains(code), "\(arguments): \(result.stdout) \(result.stderr)")
        }
        // A pipe with a writer is still read whole.
        let piped = try TestSupport.run(["bash", "-c", "timeout 20 '\(TestSupport.extctl)' manifest validate <(cat tree/manifest.json)"], cwd: scratch.path)
        #expect(piped.status != 124, "\(piped.stderr)")
        #expect(!(piped.stdout + piped.stderr).contains("empty"), "\(piped.stdout) \(piped.stderr)")
        // A FIFO nobody writes to, given as the bundle, reads as empty: typed refusals, no hang.
        for arguments in [["verify", scratch("other.fifo")], ["inspect", scratch("other.fifo")], ["hash", scratch("other.fifo")],
                          ["unpack", scratch("other.fifo"), scratch("out")], ["store", "put-bundle", scratch("other.fifo"), "--store", scratch("st")],
                          ["publish", scratch("b.tar.zst"), "--manifest", scratch("other.fifo"), "--data", scratch("data")]] {
            let result = try TestSupport.run(["timeout", "20", TestSupport.extctl] + arguments)
            #expect(result.status != 124, "\(arguments) hung")
            // `hash` and `store put-bundle` take any bytes, the empty ones too.
            if !["hash", "store"].contains(arguments[0]) { #expect(result.status == 1, "\(arguments): \(result.status) \(result.stderr)") }
        }
        // Outputs never replace what is not a file (a FIFO here, a device node as root).
        for arguments in [["pack", scratch("tree"), "-o", scratch("other.fifo")], ["sign", scratch("b.tar.zst"), "--key", scratch("k.pem"), "-o", scratch("other.fifo")]] {
            let result = try TestSupport.run(["timeout", "20", TestSupport.extctl] + arguments)
            #expect(result.status == 1, "\(arguments): \(result.status) \(result.stderr)")
            var info = stat()
            #expect(lstat(scratch("other.fifo"), &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO, "\(arguments) replaced the FIFO")
        }
        let hash = try extctl("store", "put-bundle", scratch("b.tar.zst"), "--store", scratch("st2")).stdout.prefix(71)
        let fetched = try TestSupport.run(["timeout", "20", TestSupport.extctl, "store", "get-bundle", String(hash), "-o", scratch("other.fifo"), "--store", scratch("st2")])
        #expect(fetched.status == 1, "\(fetched.stderr)")
        var fifoInfo = stat()
        #expect(lstat(scratch("other.fifo"), &fifoInfo) == 0 && (fifoInfo.st_mode & S_IFMT) == S_IFIFO)
        // A file that is not a private key is named as one.
        for key in [scratch("tree/manifest.json"), scratch("k.pub.pem")] {
            let bad = try extctl("sign", scratch("b.tar.zst"), "--key", key)
            #expect(bad.status == 1 && bad.stderr.contains("SIGNING_KEY_INVALID"), "\(bad.stderr)")
        }
    }

    /// An error quoting a hostile name escapes it once: `ui/a\nb`, not `ui/a\\nb`.
    @Test func errorsEscapeWhatTheyQuoteOnce() throws {
        let scratch = try Scratch("escape-once")
        try Self.craft(scratch, name: "ui/a\nb\u{1B}.txt")
        let result = try extctl("verify", scratch("bad.tar.zst"))
        #expect(result.status == 1)
        #expect(result.stderr.contains(#"ui/a\nb\u{1B}.txt"#), "\(result.stderr)")
        #expect(!result.stderr.contains(#"\\n"#) && !result.stderr.contains("\u{1B}"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr.debugDescription)")
    }
}
