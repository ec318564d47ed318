import Foundation
import MorphoLosses
import MorphoNN
import MorphoTensor

/// The fixture ops (FORMAT.md's table), each mapped onto the MorphoLosses / MorphoNN code that
/// training calls. Inputs are checked here first, so a malformed fixture fails its case with a
/// reason instead of tripping a library precondition.
public enum ConformanceOperations {
    /// Every op this runner knows.
    public static let names: [String] = [
        "dice_binary", "balanced_ce", "dice_multiclass", "dice_ce", "ncut", "boundary", "signed_distance", "prl",
        "lcc", "gcc", "mse", "grad_l1", "grad_l2", "bending", "idloss_l1", "idloss_l2", "propel",
        "warp_linear", "warp_nearest", "integrate", "alpha_schedule",
    ]

    public static func run(_ fx: Fixture) throws -> OperationResult {
        switch fx.op {
        case "dice_binary":
            let x = try fx.input("input"), t = try fx.input("target")
            try fx.require(x.rank >= 2 && x.count == t.count, "inputs", "input \(x.shape) and target \(t.shape) differ")
            return try differentiate(fx) { BinaryDiceLoss()($0["input"]!, $0["target"]!) }

        case "balanced_ce":
            let eps = try fx.float("eps")
            try checkLogitsAndLabels(fx, "logits", "target")
            return try differentiate(fx) { BalancedCrossEntropyLoss(eps: eps)(logits: $0["logits"]!, labels: $0["target"]!) }

        case "dice_multiclass":
            let loss = SoftDiceLoss(includeBackground: try fx.bool("include_background"),
                                    smoothNumerator: try fx.float("smooth_nr"), smoothDenominator: try fx.float("smooth_dr"))
            try checkLogitsAndLabels(fx, "logits", "target")
            if !loss.includeBackground { try fx.require(try fx.input("logits").shape[1] > 1, "inputs.logits", "no class besides the background") }
            return try differentiate(fx) { loss(logits: $0["logits"]!, labels: $0["target"]!) }

        case "dice_ce":
            let loss = DiceCELoss(lambdaDice: try fx.float("lambda_dice"), lambdaCE: try fx.float("lambda_ce"))
            try checkLogitsAndLabels(fx, "logits", "target")
            return try differentiate(fx) { loss(logits: $0["logits"]!, labels: $0["target"]!) }

        case "ncut":
            let loss = SoftNCutLoss(sigma2: try fx.float("sigma_2"))
            let p = try fx.input("probs"), image = try fx.input("image")
            try requireImage(fx, p, "probs")
            try fx.require(image.rank == p.rank && image.shape[0] == p.shape[0] && image.spatialShape == p.spatialShape,
                           "inputs.image", "shape \(image.shape) does not match probs \(p.shape)")
            return try differentiate(fx) { loss(probs: $0["probs"]!, image: $0["image"]!) }

        case "boundary":
            let idc = try fx.ints("idc"), spacing = try fx.doubles("spacing")
            let p = try fx.input("probs")
            try requireImage(fx, p, "probs")
            try checkLabels(fx, "target", items: p.shape[0], spatial: p.spatialCount, classes: p.shape[1])
            try fx.require(spacing.count == p.spatialRank && spacing.allSatisfy { $0 > 0 }, "params.spacing", "needs \(p.spatialRank) positive sizes")
            try fx.require(!idc.isEmpty && idc.allSatisfy { $0 >= 0 && $0 < p.shape[1] }, "params.idc", "classes out of 0..<\(p.shape[1])")
            let loss = BoundaryLoss(idc: idc, spacing: spacing)
            return try differentiate(fx) { loss(probs: $0["probs"]!, labels: $0["target"]!) }

        case "signed_distance":
            let mask = try fx.input("mask"), spacing = try fx.doubles("spacing")
            try fx.require((1...3).contains(mask.rank) && mask.count > 0, "inputs.mask", "expected 1–3 non-empty spatial axes, got \(mask.shape)")
            try fx.require(spacing.count == mask.rank && spacing.allSatisfy { $0 > 0 }, "params.spacing", "needs \(mask.rank) positive sizes")
            try checkLabels(fx, "mask", items: 1, spatial: mask.count, classes: 2)
            // The boundary loss's own path: maps of classes 0 and 1 of a one-item label map; class 1 is the mask.
            let maps = signedDistanceMaps(labels: mask, classes: 2, spatial: mask.shape, spacing: spacing)
            return OperationResult(output: maps.slice(axis: 1, 1 ..< 2).reshaped(mask.shape))

        case "lcc":
            let loss = LocalNCC(window: try fx.int("win"), eps: try fx.float("eps"))
            try fx.require(loss.window > 0 && loss.window % 2 == 1, "params.win", "must be odd and positive")
            try checkImagePair(fx)
            return try differentiate(fx) { loss($0["I"]!, $0["J"]!) }

        case "prl":
            let loss = PhysicalRegularizationLoss(K: try fx.float("K"), p: try fx.float("p"), sigma: try fx.double("sigma"), rho: try fx.double("rho"))
            try fx.require(loss.sigma > 0 && loss.rho > 0 && loss.K > 0, "params", "K, sigma and rho must be positive")
            let pred = try fx.input("pred"), target = try fx.input("target")
            try requireImage(fx, pred, "pred", channels: 1)
            try fx.require(target.shape == pred.shape, "inputs.target", "shape \(target.shape) differs from pred \(pred.shape)")
            return try differentiate(fx) { loss(prediction: $0["pred"]!, target: $0["target"]!) }

        case "gcc":
            try checkImagePair(fx)
            return try differentiate(fx) { GlobalNCC()($0["I"]!, $0["J"]!) }

        case "mse":
            try checkImagePair(fx)
            return try differentiate(fx) { MeanSquaredError()($0["I"]!, $0["J"]!) }

        case "grad_l1", "grad_l2":
            try requireImage(fx, try fx.input("flow"), "flow")
            let loss = GradientSmoothnessLoss(penalty: fx.op == "grad_l1" ? .l1 : .l2)
            return try differentiate(fx) { loss($0["flow"]!) }

        case "bending":
            try requireImage(fx, try fx.input("flow"), "flow")
            return try differentiate(fx) { BendingEnergyLoss()($0["flow"]!) }

        case "idloss_l1", "idloss_l2":
            let theta = try fx.input("theta")
            try fx.require(theta.rank == 3 && theta.shape[2] == theta.shape[1] + 1, "inputs.theta", "expected [N, nd, nd + 1], got \(theta.shape)")
            let loss = AffineIdentityLoss(penalty: fx.op == "idloss_l1" ? .l1 : .l2)
            return try differentiate(fx) { loss($0["theta"]!) }

        case "propel":
            let out = try fx.input("output"), target = try fx.input("target")
            try fx.require(out.rank == 3 && out.shape[2] > 0 && out.shape[2] % 2 == 0, "inputs.output", "expected [B, G, 2D], got \(out.shape)")
            try fx.require(target.shape == [out.shape[0], out.shape[2] / 2], "inputs.target", "expected [B, D], got \(target.shape)")
            let loss = PROPELLoss(sigma: try fx.float("sigma"))
            return try differentiate(fx) { loss(output: $0["output"]!, target: $0["target"]!) }

        case "warp_linear", "warp_nearest":
            try checkWarpInputs(fx)
            // The registration trainer's layer: linear for images, nearest for label maps.
            let transformer = SpatialTransformer()
            let linear = fx.op == "warp_linear"
            return try differentiate(fx) {
                linear ? transformer($0["src"]!, flow: $0["flow"]!) : transformer.warpLabels($0["src"]!, flow: $0["flow"]!)
            }

        case "integrate":
            let steps = try fx.int("steps")
            try fx.require(steps >= 0, "params.steps", "must be ≥ 0")
            let vec = try fx.input("vec")
            try requireImage(fx, vec, "vec", channels: vec.spatialRank)
            return try differentiate(fx) { integrate($0["vec"]!, steps: steps) }

        case "alpha_schedule":
            let epochs = try fx.int("epochs")
            try fx.require(epochs >= 0, "params.epochs", "must be ≥ 0")
            let schedule: AlphaSchedule
            do {
                schedule = try AlphaSchedule(kind: try fx.string("kind"), alpha0: try fx.double("alpha0"), delta: try fx.double("delta"),
                                             floor: try fx.double("floor"), cap: try fx.optionalDouble("cap"), key: "params.kind")
            } catch let e as LossError {
                throw ConformanceError.malformed(path: fx.path, key: "params", reason: "\(e)")
            }
            let out = Tensor(shape: [epochs, 2]) { p in
                for e in 0..<epochs {
                    let w = schedule.weights(epoch: e)
                    p[2 * e] = Float(w.regional)
                    p[2 * e + 1] = Float(w.boundary)
                }
            }
            return OperationResult(output: out)

        default:
            throw ConformanceError.unknownOp(path: fx.path, op: fx.op)
        }
    }

    /// Evaluates `f` on the fixture's inputs, those named in `grads` as leaves, and back-propagates:
    /// from the scalar itself, or through `sum(output · cotangent)` for a tensor output.
    static func differentiate(_ fx: Fixture, _ f: ([String: Tensor]) -> Tensor) throws -> OperationResult {
        var leaves: [String: Tensor] = [:]
        for (key, t) in fx.inputs { leaves[key] = fx.grads[key] != nil ? t.tensor.requiringGrad() : t.tensor }
        let out = f(leaves)
        guard !fx.grads.isEmpty else { return OperationResult(output: out.detached()) }
        if out.count == 1 && fx.cotangent == nil {
            out.backward()
        } else {
            guard let c = fx.cotangent else {
                throw ConformanceError.malformed(path: fx.path, key: "cotangent", reason: "needed for the gradients of a tensor output")
            }
            try fx.require(c.shape == out.shape, "cotangent", "shape \(c.shape) does not match the output \(out.shape)")
            (out * c.tensor).sum().backward()
        }
        var grads: [String: Tensor] = [:]
        for key in fx.grads.keys { grads[key] = leaves[key]!.grad ?? Tensor.zeros(like: leaves[key]!) }
        return OperationResult(output: out.detached(), grads: grads)
    }

    // MARK: Input checks

    static func requireImage(_ fx: Fixture, _ t: Tensor, _ key: String, channels: Int? = nil) throws {
        try fx.require((4...5).contains(t.rank) && t.count > 0, "inputs.\(key)", "expected [N, C, H, W] or [N, C, D, H, W], got \(t.shape)")
        if let channels { try fx.require(t.shape[1] == channels, "inputs.\(key)", "expected \(channels) channel(s), got \(t.shape)") }
    }

    static func checkImagePair(_ fx: Fixture) throws {
        let i = try fx.input("I"), j = try fx.input("J")
        try requireImage(fx, i, "I")
        try fx.require(j.shape == i.shape, "inputs.J", "shape \(j.shape) differs from I \(i.shape)")
    }

    static func checkLogitsAndLabels(_ fx: Fixture, _ logitsKey: String, _ labelsKey: String) throws {
        let x = try fx.input(logitsKey)
        try requireImage(fx, x, logitsKey)
        try checkLabels(fx, labelsKey, items: x.shape[0], spatial: x.spatialCount, classes: x.shape[1])
    }

    static func checkLabels(_ fx: Fixture, _ key: String, items: Int, spatial: Int, classes: Int) throws {
        let y = try fx.input(key)
        try fx.require(y.count == items * spatial, "inputs.\(key)", "shape \(y.shape) does not hold \(items) label map(s) of \(spatial) voxels")
        let ok = y.withUnsafeBufferPointer { $0.allSatisfy { $0 >= 0 && $0 < Float(classes) && $0.rounded() == $0 } }
        try fx.require(ok, "inputs.\(key)", "labels must be class indices in 0..<\(classes)")
    }

    static func checkWarpInputs(_ fx: Fixture) throws {
        let src = try fx.input("src"), flow = try fx.input("flow")
        try requireImage(fx, src, "src")
        try requireImage(fx, flow, "flow", channels: src.spatialRank)
        try fx.require(flow.shape[0] == src.shape[0] && flow.spatialShape == src.spatialShape, "inputs.flow",
                       "shape \(flow.shape) does not match src \(src.shape)")
    }
}
