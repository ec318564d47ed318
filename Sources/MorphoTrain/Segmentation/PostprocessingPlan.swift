import Foundation
import MorphoKernels

/// Which largest-component steps a model's predictions get (nnU-Net's "determine_postprocessing"):
/// first the foreground as a whole, then each listed class. Decided once after training on the
/// validation cases (`decide`), stored in the checkpoint's metadata under `postprocessing`, and
/// applied by `Segmenter`.
public struct PostprocessingPlan: Equatable, Sendable {
    /// Keep only the largest component of the foreground (all labels > 0).
    public var foreground: Bool
    /// Classes (> 0, ascending) reduced to their largest component, after the foreground step.
    public var classes: [Int]
    public var connectivity: Connectivity

    public init(foreground: Bool = false, classes: [Int] = [], connectivity: Connectivity = .full) {
        self.foreground = foreground
        self.classes = classes.sorted()
        self.connectivity = connectivity
    }

    /// The checkpoint metadata key.
    public static let metadataKey = "postprocessing"

    public var isIdentity: Bool { !foreground && classes.isEmpty }

    /// Applies the steps to class indices `[D, H, W]`.
    public func apply(to labels: inout [Float], shape: [Int]) {
        if foreground { LargestComponent.keepForeground(&labels, shape: shape, connectivity: connectivity) }
        for k in classes { LargestComponent.keep(class: k, &labels, shape: shape, connectivity: connectivity) }
    }

    /// `{"foreground": true, "classes": [1, 2], "connectivity": "full"}`.
    public var json: String {
        "{\"foreground\": \(foreground), \"classes\": [\(classes.map(String.init).joined(separator: ", "))], \"connectivity\": \"\(connectivity.rawValue)\"}"
    }

    /// Parses `json`; nil for anything else.
    public init?(json: String) {
        guard let data = json.data(using: .utf8),
              let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let fg = o["foreground"] as? Bool, let classes = o["classes"] as? [Int],
              let c = (o["connectivity"] as? String).flatMap(Connectivity.init(rawValue:))
        else { return nil }
        self.init(foreground: fg, classes: classes, connectivity: c)
    }

    /// One validation case: predicted and reference class indices `[D, H, W]` on one grid.
    public struct Case: Sendable {
        public var prediction: [Float]
        public var reference: [Float]
        public var shape: [Int]

        public init(prediction: [Float], reference: [Float], shape: [Int]) {
            self.prediction = prediction
            self.reference = reference
            self.shape = shape
        }
    }

    /// The decision and the figures it rests on: mean validation Dice per class (index k − 1 for
    /// class k) before and after the chosen plan.
    public struct Decision: Sendable {
        public var plan: PostprocessingPlan
        public var diceBefore: [Double]
        public var diceAfter: [Double]
    }

    /// nnU-Net's rule: the foreground step is kept when it raises the mean over classes of the
    /// per-class mean validation Dice; then, on top of that, each class's step is kept when it
    /// raises that class's mean Dice. Only strict improvements count, so a plan that changes
    /// nothing stays empty. Dice is `2|P ∩ R| / (|P| + |R|)`, 1 when both are empty.
    public static func decide(_ cases: [Case], classes: Int, connectivity: Connectivity = .full) -> Decision {
        func meanDice(_ predictions: [[Float]]) -> [Double] {
            guard !cases.isEmpty else { return Array(repeating: 0, count: max(0, classes - 1)) }
            var sums = [Double](repeating: 0, count: max(0, classes - 1))
            for (p, c) in zip(predictions, cases) {
                for (k, d) in dice(p, c.reference, classes: classes).enumerated() { sums[k] += d }
            }
            return sums.map { $0 / Double(cases.count) }
        }
        func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }

        var current = cases.map(\.prediction)
        let before = meanDice(current)
        var best = before
        var plan = PostprocessingPlan(connectivity: connectivity)
        let foreground = cases.indices.map { i -> [Float] in
            var p = current[i]
            LargestComponent.keepForeground(&p, shape: cases[i].shape, connectivity: connectivity)
            return p
        }
        let withForeground = meanDice(foreground)
        if mean(withForeground) > mean(best) {
            plan.foreground = true
            current = foreground
            best = withForeground
        }
        for k in 1..<max(classes, 1) {
            let candidate = cases.indices.map { i -> [Float] in
                var p = current[i]
                LargestComponent.keep(class: k, &p, shape: cases[i].shape, connectivity: connectivity)
                return p
            }
            let scores = meanDice(candidate)
            if scores[k - 1] > best[k - 1] {
                plan.classes.append(k)
                current = candidate
                best = scores
            }
        }
        return Decision(plan: plan, diceBefore: before, diceAfter: best)
    }

    /// Dice of classes `1..<classes`.
    static func dice(_ p: [Float], _ r: [Float], classes: Int) -> [Double] {
        var predicted = [Int](repeating: 0, count: classes), reference = predicted, both = predicted
        for i in p.indices {
            let a = Int(p[i]), b = Int(r[i])
            if a > 0, a < classes { predicted[a] += 1 }
            if b > 0, b < classes { reference[b] += 1 }
            if a == b, a > 0, a < classes { both[a] += 1 }
        }
        return (1..<max(classes, 1)).map { k in
            predicted[k] + reference[k] == 0 ? 1 : 2 * Double(both[k]) / Double(predicted[k] + reference[k])
        }
    }
}
