import Foundation
import MorphoIO

/// One self-contained HTML page (`report.html`): inline CSS, inline SVG, pictures as `data:` URIs,
/// no script and no reference to anything outside the file, so it opens in any browser offline.
///
/// The markup is also well-formed XML (void elements self-closed, only the XML entities), so a
/// test can parse it with an XML parser. No namespace URIs either: the HTML parser puts inline
/// `<svg>` in the SVG namespace by itself, and the file then holds no `http` string at all.
/// Every text that comes from a file or the command line goes through `escape`; the methods that
/// take `String` text escape it themselves, only `raw` (markup this module built, e.g.
/// `SVGLineChart.svg`) does not.
public struct HTMLDocument: Sendable {
    public var title: String
    /// The body's markup so far.
    public private(set) var body = ""

    public init(title: String) {
        self.title = title
    }

    /// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            // Control characters other than tab and newlines are not allowed in XML text.
            case _ where ch.value < 0x20 && ch != "\t" && ch != "\n" && ch != "\r": out += "\u{FFFD}"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// A section heading (`<h2>`).
    public mutating func heading(_ text: String) {
        body += "<h2>\(Self.escape(text))</h2>\n"
    }

    /// A paragraph of plain text.
    public mutating func paragraph(_ text: String, className: String? = nil) {
        body += "<p\(className.map { " class=\"\(Self.escape($0))\"" } ?? "")>\(Self.escape(text))</p>\n"
    }

    /// A table: one header row, then `rows` (cells as plain text). Columns from `firstNumeric`
    /// on are right-aligned.
    public mutating func table(header: [String], rows: [[String]], numericFrom firstNumeric: Int = 1, caption: String? = nil) {
        var t = "<table>\n"
        if let caption { t += "<caption>\(Self.escape(caption))</caption>\n" }
        t += "<thead><tr>" + header.map { "<th>\(Self.escape($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for row in rows {
            t += "<tr>" + row.enumerated().map { i, cell in
                i >= firstNumeric ? "<td class=\"num\">\(Self.escape(cell))</td>" : "<td>\(Self.escape(cell))</td>"
            }.joined() + "</tr>\n"
        }
        body += t + "</tbody>\n</table>\n"
    }

    /// Text shown as is, in a monospaced block (configs, logs).
    public mutating func preformatted(_ text: String) {
        body += "<pre>\(Self.escape(text))</pre>\n"
    }

    /// A PNG file's bytes inline as a `data:` URI, with its caption.
    public mutating func image(png: [UInt8], alt: String, caption: String? = nil) {
        let uri = "data:image/png;base64," + Data(png).base64EncodedString()
        body += "<figure><img src=\"\(uri)\" alt=\"\(Self.escape(alt))\"/>"
        if let caption { body += "<figcaption>\(Self.escape(caption))</figcaption>" }
        body += "</figure>\n"
    }

    /// A picture in memory, encoded as PNG and inlined (see `image(png:alt:caption:)`).
    public mutating func image(_ canvas: Canvas, alt: String, caption: String? = nil) throws {
        try image(png: PNG.encode(canvas.pixels, width: canvas.width, height: canvas.height, color: .rgb), alt: alt, caption: caption)
    }

    /// Markup built by this module (e.g. an `SVGLineChart`), inserted unescaped.
    public mutating func raw(_ markup: String) {
        body += markup + "\n"
    }

    /// The page.
    public var html: String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title>\(Self.escape(title))</title>
        <style>\(Self.style)</style>
        </head>
        <body>
        <h1>\(Self.escape(title))</h1>
        \(body)</body>
        </html>

        """
    }

    /// Writes the page atomically (a reader never sees half a report).
    ///
    /// - Throws: `MorphoTrainError.output` naming `path`.
    public func write(to path: String) throws {
        do {
            try html.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw MorphoTrainError.output(path: path, message: "cannot write the report (\(error.localizedDescription))")
        }
    }

    /// System fonts only: a report must not fetch anything.
    static let style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;\
        color:#222;padding:0 16px}\
        h1{font-size:1.6em;margin-bottom:4px}h2{font-size:1.25em;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\
        p.meta{color:#555;margin-top:0}\
        table{border-collapse:collapse;margin:8px 0;font-size:0.9em}caption{text-align:left;color:#555;padding:4px 0;white-space:nowrap}\
        th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f3f3f3;text-align:left}td.num{text-align:right;\
        font-variant-numeric:tabular-nums}tbody tr:nth-child(even){background:#fafafa}\
        pre{background:#f6f8fa;border:1px solid #ddd;padding:10px;overflow-x:auto;font-size:0.85em}\
        figure{margin:8px 0}figure img{max-width:100%;image-rendering:pixelated}figcaption{color:#555;font-size:0.9em}\
        svg.chart{display:inline-block;margin:4px 8px 4px 0;background:#fff;border:1px solid #eee}
        """
}
