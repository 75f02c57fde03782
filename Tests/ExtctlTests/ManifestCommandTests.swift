import Foundation
import Testing
import TestSupport

@Suite struct ManifestCommandTests {
    static let fixtures = TestSupport.repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/alga-manifests").path

    @Test func validateGivesTheVerdictAndTheIssues() throws {
        let valid = try extctl("manifest", "validate", Self.fixtures + "/valid-hello-world.json")
        #expect(valid.status == 0)
        #expect(valid.stdout == "valid\n")
        #expect(try extctl("manifest", "validate", "--strict", Self.fixtures + "/valid-hello-world.json").stdout == "valid (strict)\n")
        let invalid = try extctl("manifest", "validate", Self.fixtures + "/invalid-docs-example-v2.json")
        #expect(invalid.status == 1)
        #expect(invalid.stdout == "events: Unknown top-level field 'events'.\nentry: Unknown top-level field 'entry'.\nsbom: Unknown top-level field 'sbom'.\n")
        let json = try extctl("manifest", "validate", "--json", Self.fixtures + "/invalid-component-basic-entry.json")
        #expect(json.status == 1)
        let issues = try JSONDecoder().decode([[String: String]].self, from: Data(json.stdout.utf8))
        #expect(issues == [["path": "entry", "message": "Unknown top-level field 'entry'."]])
        let strict = try extctl("manifest", "validate", "--strict", "--json", Self.fixtures + "/invalid-component-basic-entry.json")
        #expect(try JSONDecoder().decode([[String: String]].self, from: Data(strict.stdout.utf8)).map { $0["path"] } == ["entry", "name"])
    }

    @Test func hostileManifestsAreRefusedNotCrashedOn() throws {
        let scratch = try Scratch("manifest")
        try TestSupport.sh(
            "head -c 10000000 /dev/zero | tr '\\0' ' ' > big.json && python3 -c \"print('[' * 10000 + ']' * 10000)\" > deep.json && printf '[1,2]' > array.json && printf 'nope' > text.json",
            cwd: scratch.path)
        for (file, message) in [
            ("big.json", "Manifest is larger than"), ("deep.json", "JSON nests deeper than 64 levels"),
            ("array.json", "Manifest must be a JSON object."), ("text.json", "Unexpected token in JSON"),
        ] {
            let result = try extctl("manifest", "validate", scratch(file))
            #expect(result.status == 1, "\(file)")
            #expect(result.stdout.hasPrefix("$: \(message)"), "\(file): \(result.stdout)")
        }
        #expect(try extctl("manifest", "validate", scratch("missing.json")).status == 1)
    }

    /// The schema is valid JSON Schema, accepts every valid fixture and rejects the invalid ones,
    /// checked by Python's `jsonschema` (an independent implementation).
    @Test func theSchemaAgreesWithTheFixtures() throws {
        let scratch = try Scratch("schema")
        let schema = try extctl("manifest", "schema")
        #expect(schema.status == 0)
        try Data(schema.stdout.utf8).write(to: URL(fileURLWithPath: scratch("schema.json")))
        let script = """
            import glob, json, os, sys, jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            validator = jsonschema.Draft202012Validator(schema)
            for path in sorted(glob.glob(os.path.join(sys.argv[2], "*.json"))):
                ok = validator.is_valid(json.load(open(path)))
                print(os.path.basename(path), "valid" if ok else "invalid")
            """
        try Data(script.utf8).write(to: URL(fileURLWithPath: scratch("check.py")))
        let verdicts = try TestSupport.sh("python3 check.py schema.json '\(Self.fixtures)'", cwd: scratch.path)
        for line in verdicts.split(separator: "\n") {
            let parts = line.split(separator: " ")
            #expect(parts.count == 2 && parts[0].hasPrefix(parts[1] == "valid" ? "valid-" : "invalid-"), "\(line)")
        }
        #expect(verdicts.split(separator: "\n").count >= 6)
    }
}
