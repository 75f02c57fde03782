import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A minimal XML element tree for S3 responses.
struct XMLElement: Sendable {
    var name: String
    var text: String
    var children: [XMLElement]

    /// The first child with `name`.
    func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }

    /// Every child with `name`.
    func all(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }

    /// The text of the first child with `name`.
    subscript(_ name: String) -> String? { child(name)?.text }

    /// Parses a document; nil when it is not XML.
    static func parse(_ bytes: [UInt8]) -> XMLElement? {
        let delegate = TreeBuilder()
        let parser = XMLParser(data: Data(bytes))
        parser.delegate = delegate
        guard parser.parse(), let root = delegate.root else { return nil }
        return root
    }

    /// Escapes text for element content.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [XMLElement] = []
    var root: XMLElement?

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        stack.append(XMLElement(name: elementName, text: "", children: []))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if !stack.isEmpty { stack[stack.count - 1].text += string }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        guard let element = stack.popLast() else { return }
        if stack.isEmpty { root = element } else { stack[stack.count - 1].children.append(element) }
    }
}
