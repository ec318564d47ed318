/// How far each parameter of a linear transform moves the image, so one optimiser step treats
/// radians, matrix entries and millimetres alike (ITK's `RegistrationParameterScalesFromPhysicalShift`):
///
///     scale_k = max over the corners x of the fixed image's box of |∂y/∂p_k (x)|   (mm per unit of p_k)
///
/// A translation has scale 1; a rotation about the centre has the distance of the farthest
/// corner (~100 mm for a head), a matrix entry the largest coordinate offset from the centre.
/// The optimiser moves `q_k = scale_k · p_k`, so a step of length λ in q moves no corner by more
/// than about λ mm, whatever the parameter.
struct ParameterScales {
    var values: [Double]

    init(_ transform: LinearTransform, fixed: LinearPyramidLevel) {
        let derivatives = transform.parameterDerivatives()
        let corners: [SIMD3<Double>] = [0, 1].flatMap { k in
            [0, 1].flatMap { j in
                [0, 1].map { i in
                    fixed.affine.apply(SIMD3(
                        Double(i * (fixed.width - 1)), Double(j * (fixed.height - 1)), Double(k * (fixed.depth - 1))))
                }
            }
        }
        values = derivatives.map { d in
            var largest = 0.0
            for x in corners {
                let shift = d.matrix * (x - transform.center) + d.translation
                largest = max(largest, (shift * shift).sum().squareRoot())
            }
            return max(largest, 1e-6)
        }
    }
}
