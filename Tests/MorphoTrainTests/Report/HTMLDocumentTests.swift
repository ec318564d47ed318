import Foundation
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// The report page: text from files escaped everywhere it can appear, markup balanced, nothing
/// fetched from outside the file.
final class HTMLDocumentTests: XCTestCase {
    let hostile = "<script>alert('x & y')</script>"

    func testTextFromFilesIsEscapedInEveryPart() throws {
        var doc = HTMLDocument(title: hostile)
        doc.heading(hostile)
        doc.paragraph(hostile, className: "\"><script>")
        doc.table(header: ["case", hostile], rows: [[hostile, "1"]], caption: hostile)
        doc.preformatted("name: \(hostile)\n")
        doc.image(png: [1, 2, 3], alt: hostile, caption: hostile)
        let html = doc.html
        XCTAssertFalse(html.contains("<script"))
        XCTAssertEqual(ReportChecks.count("&lt;script&gt;alert(&#39;x &amp; y&#39;)&lt;/script&gt;", in: html), 10)
        ReportChecks.assertSelfContainedAndWellFormed(html)
    }

    func testEscapeMapsTheFiveMarkupCharactersAndControlCharacters() {
        XCTAssertEqual(HTMLDocument.escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;")
        XCTAssertEqual(HTMLDocument.escape("tab\tline\n\u{1}"), "tab\tline\n\u{FFFD}")
        XCTAssertEqual(HTMLDocument.escape("± ∞ · Dice"), "± ∞ · Dice")
    }

    func testPicturesAreInlinedAsDataURIs() throws {
        var doc = HTMLDocument(title: "t")
        try doc.image(Canvas(width: 3, height: 2), alt: "blank")
        XCTAssertTrue(doc.html.contains("<img src=\"data:image/png;base64,iVBORw0KGgo"))
        ReportChecks.assertSelfContainedAndWellFormed(doc.html)
    }

    func testWriteReplacesTheFileWhole() throws {
        let dir = try temporaryFolder("html-document")
        var doc = HTMLDocument(title: "first")
        try doc.write(to: dir + "/report.html")
        doc.title = "second"
        try doc.write(to: dir + "/report.html")
        XCTAssertEqual(try String(contentsOfFile: dir + "/report.html", encoding: .utf8), doc.html)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["report.html"])
        XCTAssertThrowsError(try doc.write(to: dir + "/missing/report.html")) {
            XCTAssertTrue("\($0)".hasPrefix(dir + "/missing/report.html: cannot write the report"), "\($0)")
        }
    }

    /// The checker the report tests rely on finds what it is meant to find.
    func testTheWellFormednessCheckerCatchesUnclosedAndCrossedTags() {
        XCTAssertNil(ReportChecks.unbalancedTags("<!DOCTYPE html><p>a<br/><b>c</b></p><style>p>b{}</style>"))
        XCTAssertEqual(ReportChecks.unbalancedTags("<div><p></div>"), "</div> closes <p>")
        XCTAssertEqual(ReportChecks.unbalancedTags("<div><p></p>"), "left open: div")
        XCTAssertEqual(ReportChecks.unbalancedTags("<p><img src=\"x\"></p>"), "<img> is not self-closed")
    }
}
