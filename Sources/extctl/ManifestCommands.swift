import ArgumentParser
import Foundation
import ManifestV2

struct ManifestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest", abstract: "Validate manifests as Alga's finalize does, or print the JSON Schema.",
        subcommands: [Validate.self, Schema.self])

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a manifest.json; exit 0 when valid, 1 with the issues when not.")

        @Argument(help: "The manifest file.")
        var file: String

        @Flag(help: "Also require a reverse-domain name, strict SemVer, the cap: prefix and unique endpoints.")
        var strict = false

        @Flag(help: "Print the issues as a JSON array of {path, message}.")
        var json = false

        func run() throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw RefusedInput(message: "MANIFEST_IO: cannot read '\(file)'")
            }
            let result = ManifestValidator.validate(Array(data), options: .init(strict: strict))
            if json {
                try Console.json(result.issues)
            } else if result.isValid {
                Console.out("valid\(strict ? " (strict)" : "")")
            } else {
                for issue in result.issues { Console.out("\(issue.path): \(issue.message)") }
            }
            if !result.isValid { throw ExitCode(1) }
        }
    }

    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the manifest v2 JSON Schema.")

        func run() { Console.out(ManifestSchema.json) }
    }
}
