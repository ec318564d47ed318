import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// Checks every `report.html` test shares: the page is well-formed (each opened tag closed in
/// order, checked by hand and by an XML parser), fetches nothing (no `http://`, `https://` or
/// protocol-relative `//` reference, no `<script>`, no `<link>`), and its parts can be counted.
enum ReportChecks {
    /// Tags whose element never has content in HTML; the report writes them self-closed.
    static let voidTags: Set<String> = ["meta", "img", "br", "hr", "link", "input"]

    /// The names of the tags left open, or the first mismatch, as a message; nil when balanced.
    /// Skips the doctype, comments and the contents of `<style>`.
    static func unbalancedTags(_ html: String) -> String? {
        var stack: [String] = []
        var rest = Substring(html)
        while let open = rest.firstIndex(of: "<") {
            rest = rest[rest.index(after: open)...]
            if rest.hasPrefix("!--") {
                guard let end = rest.range(of: "-->") else { return "unterminated comment" }
                rest = rest[end.upperBound...]
                continue
            }
            guard let close = rest.firstIndex(of: ">") else { return "unterminated tag" }
            let tag = rest[..<close]
            rest = rest[rest.index(after: close)...]
            if tag.hasPrefix("!") { continue }
            let selfClosing = tag.hasSuffix("/")
            let closing = tag.hasPrefix("/")
            let name = String(tag.drop(while: { $0 == "/" }).prefix(while: { $0.isLetter || $0.isNumber })).lowercased()
            guard !name.isEmpty else { return "a bare '<' outside a tag: <\(tag.prefix(20))" }
            if closing {
                guard stack.last == name else { return "</\(name)> closes <\(stack.last ?? "nothing")>" }
                stack.removeLast()
            } else if voidTags.contains(name) {
                if !selfClosing { return "<\(name)> is not self-closed" }
            } else if !selfClosing {
                stack.append(name)
                if name == "style" {
                    guard let end = rest.range(of: "</style>") else { return "unterminated <style>" }
                    rest = rest[end.lowerBound...]
                }
            }
        }
        return stack.isEmpty ? nil : "left open: \(stack.joined(separator: ", "))"
    }

    /// Asserts the page is balanced, parses as XML and refers to nothing outside itself.
    static func assertSelfContainedAndWellFormed(_ html: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNil(unbalancedTags(html), file: file, line: line)
        // On Linux XMLParser lives in FoundationXML (libxml2), on Apple platforms in Foundation.
        let parser = XMLParser(data: Data(html.utf8))
        XCTAssertTrue(parser.parse(), "not well-formed XML: \(String(describing: parser.parserError))", file: file, line: line)
        for forbidden in ["http://", "https://", "<script", "<link", "src=\"//", "url(", "@import"] {
            XCTAssertFalse(html.lowercased().contains(forbidden), "the report contains \(forbidden)", file: file, line: line)
        }
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"), file: file, line: line)
    }

    /// How many times `needle` occurs in `text`.
    static func count(_ needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    /// The `data-points` counts of the chart series named `name` (one per chart holding it).
    static func seriesPointCounts(_ html: String, name: String) -> [Int] {
        let marker = "data-name=\"\(name)\" data-points=\""
        return html.components(separatedBy: marker).dropFirst().compactMap { Int($0.prefix(while: \.isNumber)) }
    }

    /// The `<circle>` elements drawn for the series named `name` in its first chart.
    static func seriesCircles(_ html: String, name: String) -> Int? {
        guard let start = html.range(of: "data-name=\"\(name)\"") else { return nil }
        guard let end = html[start.upperBound...].range(of: "</g>") else { return nil }
        return count("<circle", in: String(html[start.upperBound..<end.lowerBound]))
    }

    /// The rows of the `<tbody>` of the table whose caption starts with `caption`.
    static func bodyRows(_ html: String, caption: String) -> [String]? {
        guard let start = html.range(of: "<caption>\(caption)") else { return nil }
        guard let body = html[start.upperBound...].range(of: "<tbody>"), let end = html[body.upperBound...].range(of: "</tbody>")
        else { return nil }
        return html[body.upperBound..<end.lowerBound].components(separatedBy: "</tr>").filter { $0.contains("<tr>") }
    }
}
