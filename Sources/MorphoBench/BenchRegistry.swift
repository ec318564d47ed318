/// Every benchmark `morphoseg bench` knows, group by group.
public enum BenchRegistry {
    /// All cases, in the order they run. `peak` comes first: the other cases report their
    /// GFLOP/s as a share of it.
    public static var all: [BenchCase] {
        [BenchCase.peakCase] + BenchCase.convCases + BenchCase.stridedConvCases + BenchCase.lossCases
    }

    /// Cases whose name equals one of `selectors`, or else starts with it; all cases when
    /// `selectors` is empty. A full name selects that case only (`conv3d/16-16/64/fwd` does
    /// not also pick `.../fwdbwd`). Throws `BenchError.noMatch` for a selector that matches nothing.
    public static func select(_ selectors: [String], from cases: [BenchCase] = all) throws -> [BenchCase] {
        if selectors.isEmpty { return cases }
        var picked = Set<String>()
        for s in selectors {
            let exact = cases.filter { $0.name == s }
            let matches = exact.isEmpty ? cases.filter { $0.name.hasPrefix(s) } : exact
            if matches.isEmpty { throw BenchError.noMatch(selector: s) }
            picked.formUnion(matches.map(\.name))
        }
        return cases.filter { picked.contains($0.name) }
    }
}

/// Errors of the benchmark module, each naming what was asked for.
public enum BenchError: Error, CustomStringConvertible, Equatable {
    case noMatch(selector: String)

    public var description: String {
        switch self {
        case .noMatch(let s):
            return "bench: no case named or starting with '\(s)' (morphoseg bench --list shows them)"
        }
    }
}
