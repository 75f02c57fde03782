import ArgumentParser
import BundleCore
import Foundation
import ManifestV2

struct ManifestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest", abstract: "Validate manifests as Alga's finalize does, or print the JSON Schema.",
        subcommands: [Validate.self, Schema.self])

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "validate",
            abstract: "Validate a manifest.json; exit 0 when valid, 1 with the issues when not.")

        @Argument(help: "The manifest file.")
        var file: String

        @Flag(help: "Also require a reverse-domain name, strict SemVer, the cap: prefix and unique endpoints.")
        var strict = false

        @Flag(help: "Print the issues as a JSON array of {path, message}.")
        var json = false

        func run() throws {
            // Never more than the manifest cap (plus one byte) is read: a larger file is refused
            // by its size, as validation refuses it.
            let options = ManifestValidator.Options(strict: strict)
            let data: [UInt8]
            do {
                data = try BoundedFile.read(file, limit: options.maxBytes)
            } catch is BoundedFile.TooLarge {
                data = [UInt8](repeating: 0x20, count: options.maxBytes + 1)  // validate() reports the size issue
            }
            let result = ManifestValidator.validate(data, options: options)
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
        static let configuration = CommandConfiguration(commandName: "schema", abstract: "Print the manifest v2 JSON Schema.")

        func run() { Console.block(ManifestSchema.json) }
    }
}
