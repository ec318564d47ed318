/// How deeply a YAML text nests, measured on the text before Yams composes it.
///
/// Yams builds its node tree recursively, so a document nested a few thousand levels deep (a
/// hostile or corrupted config, or the config embedded in a checkpoint) overflows the stack and
/// kills the process. MorphoSeg's configs nest four or five levels; `check` refuses anything
/// deeper than `maximumDepth` with one line naming the file and the line.
///
/// The scan over-estimates, never under-estimates: at each point its depth is the number of open
/// indentation levels, plus the `- ` sequence entries opened on the current line, plus the open
/// flow collections (`[`, `{`). Quoted scalars, comments and block scalars (`|`, `>`) are skipped.
/// One pass, O(length of the text).
enum YAMLNesting {
    /// Far above any real config, far below what overflows the stack (a few thousand levels).
    static let maximumDepth = 64

    /// - Throws: `MorphoTrainError.configSyntax` naming `file` when the text nests deeper than
    ///   `maximumDepth`.
    static func check(_ yaml: String, file: String) throws {
        if let (depth, line) = firstExcess(in: yaml, limit: maximumDepth) {
            throw MorphoTrainError.configSyntax(
                file: file, message: "nested \(depth) levels deep at line \(line); at most \(maximumDepth) levels are read")
        }
    }

    /// The first depth above `limit` and its 1-based line, or nil when the text stays within it.
    static func firstExcess(in yaml: String, limit: Int) -> (depth: Int, line: Int)? {
        let space = UInt8(ascii: " "), dash = UInt8(ascii: "-"), hash = UInt8(ascii: "#"), colon = UInt8(ascii: ":")
        let tab = UInt8(ascii: "\t")
        var indents: [Int] = []         // open block levels, by indentation
        var flow = 0                    // open [ and {
        var quote: UInt8? = nil         // inside '…' or "…" (may span lines)
        var blockScalarIndent: Int? = nil
        var lineNumber = 0
        for line in yaml.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let bytes = Array(line)
            var i = 0
            while i < bytes.count, bytes[i] == space { i += 1 }
            let indent = i
            let blank = i == bytes.count || bytes[i] == hash || bytes[i] == UInt8(ascii: "\r")
            if let scalarIndent = blockScalarIndent {
                if blank || indent > scalarIndent { continue }
                blockScalarIndent = nil
            }
            if blank && quote == nil { continue }
            var depth = flow
            if quote == nil && flow == 0 {
                while let top = indents.last, top > indent { indents.removeLast() }
                if indents.last.map({ $0 < indent }) ?? true { indents.append(indent) }
                depth = indents.count
                // `- - - x`: each entry indicator opens one more level on this line.
                while i < bytes.count, bytes[i] == dash, i + 1 == bytes.count || bytes[i + 1] == space || bytes[i + 1] == tab {
                    depth += 1
                    i += 1
                    while i < bytes.count, bytes[i] == space || bytes[i] == tab { i += 1 }
                }
                if depth > limit { return (depth, lineNumber) }
            }
            let base = depth - flow
            // Significant byte before the current one on this line (for "does [ open a collection").
            var previous: UInt8? = i == indent ? nil : dash
            var last: UInt8? = nil
            while i < bytes.count {
                let c = bytes[i]
                if let q = quote {
                    if c == q {
                        if q == UInt8(ascii: "'"), i + 1 < bytes.count, bytes[i + 1] == q { i += 2; continue }
                        quote = nil
                    } else if q == UInt8(ascii: "\""), c == UInt8(ascii: "\\") {
                        i += 1
                    }
                    i += 1
                    continue
                }
                // In block context `[` opens a collection only where a value starts (`a[0]` in a
                // plain scalar opens nothing); inside a flow collection every bracket counts.
                let startsValue = previous == nil || previous == colon || previous == dash || previous == UInt8(ascii: "?")
                let opens = startsValue || flow > 0
                if c == hash && (i == 0 || bytes[i - 1] == space || bytes[i - 1] == tab) {
                    break   // a comment runs to the end of the line
                } else if (c == UInt8(ascii: "'") || c == UInt8(ascii: "\"")) && opens {
                    quote = c
                } else if (c == UInt8(ascii: "[") || c == UInt8(ascii: "{")) && opens {
                    flow += 1
                    if base + flow > limit { return (base + flow, lineNumber) }
                } else if (c == UInt8(ascii: "]") || c == UInt8(ascii: "}")) && flow > 0 {
                    flow -= 1
                }
                if c != space && c != tab {
                    previous = c
                    last = c
                }
                i += 1
            }
            // `key: |` or `key: >-` opens a block scalar: its more-indented lines are text.
            if quote == nil, flow == 0, let last, last != UInt8(ascii: "'"), last != UInt8(ascii: "\"") {
                let trimmed = bytes.prefix { $0 != hash }.reversed().drop { $0 == space || $0 == tab || $0 == UInt8(ascii: "\r") }
                let tail = Array(trimmed.prefix { $0 != space && $0 != colon }.reversed())
                if let first = tail.first, first == UInt8(ascii: "|") || first == UInt8(ascii: ">"),
                   tail.dropFirst().allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") || (0x31...0x39).contains($0) }) {
                    blockScalarIndent = indent
                }
            }
        }
        return nil
    }
}
