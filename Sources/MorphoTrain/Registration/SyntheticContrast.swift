import MorphoIO
import MorphoTensor

/// A changed contrast for hard (multimodal) registration test pairs: a non-monotonic remap of a
/// T1-weighted image's intensities that makes it T2-like (CSF bright, grey matter intermediate,
/// white matter dark), so that no monotonic intensity map — and so neither MSE nor local
/// correlation — relates it to the T1 while mutual information still does.
///
/// With `t` the T1 intensity mapped to [0, 1] by its 0.5 and 99.5 percentiles (clipped), and
/// `t_GM`, `t_WM` the medians of `t` over labels 1 (GM) and 2 (WM), the T2-like image is the
/// piecewise-linear function of `t` through the knots
///
///     t:      0     t_CSF = 0.4·t_GM    t_GM    t_WM    1
///     T2(t):  0     1                   0.55    0.25    0.2
///
/// (background dark, CSF — darker than GM in T1, at about 0.4 of its intensity on 3T T1 — the
/// brightest, then GM, then WM). On the MNI152 2009a T1 at 2 mm: t_GM ≈ 0.73, t_WM ≈ 0.96.
public enum SyntheticContrast: String, Sendable, CaseIterable {
    /// The image unchanged.
    case t1
    /// The T2-like remap above.
    case t2

    /// `image` `[1, 1, spatial…]` in this contrast; `labels` (same shape, 1 = GM, 2 = WM) place
    /// the knots.
    ///
    /// - Throws: `MorphoTrainError.invalidOption` (key `contrast`) when `.t2` has no labels or a
    ///   label is absent.
    public func apply(to image: Tensor, labels: Tensor?) throws -> Tensor {
        guard self == .t2 else { return image }
        guard let labels else {
            throw MorphoTrainError.invalidOption(key: "contrast", reason: "t2 needs labels (1 = GM, 2 = WM) to place its knots")
        }
        let t = Registration.normalised(image).scalars, classes = labels.scalars
        func median(label: Float) throws -> Float {
            let inside = zip(t, classes).filter { $0.1 == label }.map(\.0).sorted()
            guard !inside.isEmpty else {
                throw MorphoTrainError.invalidOption(key: "contrast", reason: "t2 needs label \(Int(label)) (1 = GM, 2 = WM); it is absent")
            }
            return inside[inside.count / 2]
        }
        let gm = try median(label: 1), wm = try median(label: 2)
        let knots: [(Float, Float)] = [(0, 0), (0.4 * gm, 1), (gm, 0.55), (max(wm, gm + 1e-3), 0.25), (1, 0.2)]
        let remapped = t.map { x -> Float in
            for k in 1..<knots.count where x <= knots[k].0 || k == knots.count - 1 {
                let (x0, y0) = knots[k - 1], (x1, y1) = knots[k]
                return x1 > x0 ? y0 + (y1 - y0) * min(1, max(0, (x - x0) / (x1 - x0))) : y1
            }
            return knots.last!.1
        }
        return Tensor(shape: image.shape, data: remapped)
    }
}
