import Foundation
import MorphoIO
import MorphoTensor

/// Synthetic segmentation data that needs no download: each phantom is an image of nested smooth
/// blobs with a multiplicative bias field and Gaussian noise, and the label map of the blobs.
///
/// Layout of one phantom with `classes = K`: class 1 is a large blob near the centre (a "tissue");
/// classes 2…K−1 are smaller blobs inside it (class `k` drawn over class `k−1`). A blob is an
/// ellipsoid (ellipse in 2D) with random radii and orientation whose radius is modulated by a smooth
/// function of direction (±15 %), so shapes differ between phantoms. Intensities: background 0,
/// class k ≈ `k · (1 ± 0.15)` (before a random per-image gain in [0.8, 1.2]), then
/// `(1 + bias · b(p))` with `b` a low-frequency sinusoid in [−1, 1], then noise N(0, noise²).
///
/// Phantom `index` of a set depends only on `(config.seed, index)` and the config's shape fields.
public enum Phantom {
    /// Generates phantom `index`: an image (float32, one channel) and its labels (class indices
    /// as floats), both `[1, D, H, W]` with `D = 1` in 2D, on a grid with `config.spacing` and the
    /// origin at the volume centre.
    public static func make(_ config: PhantomConfig, index: Int) -> (image: Volume, label: Volume) {
        var rng = SeedStream.generator(seed: config.seed, 0x5048_414E, index)
        let nx = config.size[0], ny = config.size[1], nz = config.dims == 3 ? config.size[2] : 1
        let is3D = config.dims == 3

        // Blobs in normalised coordinates p ∈ [−1, 1]^dims (voxel centres).
        var blobs: [(blob: Blob, label: Int)] = []
        let outer = Blob.random(
            centre: SIMD3(rng.uniform(-0.12, 0.12), rng.uniform(-0.12, 0.12), is3D ? rng.uniform(-0.12, 0.12) : 0),
            radii: SIMD3(rng.uniform(0.55, 0.8), rng.uniform(0.55, 0.8), is3D ? rng.uniform(0.55, 0.8) : 1),
            is3D: is3D, rng: &rng)
        blobs.append((outer, 1))
        var parent = outer
        if config.classes > 2 {
            for k in 2..<config.classes {
                // Inside the parent: centre within 35 % of its radii, radii 35–55 % of its radii.
                let offset = SIMD3(rng.uniform(-0.35, 0.35), rng.uniform(-0.35, 0.35), is3D ? rng.uniform(-0.35, 0.35) : 0)
                let centre = parent.centre + parent.rotation * (offset * parent.radii)
                let scale = SIMD3(rng.uniform(0.35, 0.55), rng.uniform(0.35, 0.55), is3D ? rng.uniform(0.35, 0.55) : 1)
                let child = Blob.random(centre: centre, radii: parent.radii * scale, is3D: is3D, rng: &rng)
                blobs.append((child, k))
                parent = child
            }
        }
        var means = [Float](repeating: 0, count: config.classes)
        for k in 1..<config.classes { means[k] = Float(k) * Float(rng.uniform(0.85, 1.15)) }
        let gain = Float(rng.uniform(0.8, 1.2))
        let biasFrequency = SIMD3(rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4), is3D ? rng.uniform(0.6, 1.4) : 0)
        let biasPhase = rng.uniform(0, 2 * Double.pi)
        let noise = Float(config.noise), bias = config.bias

        let count = nx * ny * nz
        var image = [Float](repeating: 0, count: count)
        var label = [Float](repeating: 0, count: count)
        func normalised(_ i: Int, _ n: Int) -> Double { n == 1 ? 0 : 2 * (Double(i) + 0.5) / Double(n) - 1 }
        for z in 0..<nz {
            for y in 0..<ny {
                for x in 0..<nx {
                    let p = SIMD3(normalised(x, nx), normalised(y, ny), normalised(z, nz))
                    var k = 0
                    for (blob, l) in blobs where blob.contains(p) { k = l }
                    let b = 1 + bias * sin((biasFrequency * p).sum() * Double.pi / 2 + biasPhase)
                    let i = (z * ny + y) * nx + x
                    label[i] = Float(k)
                    image[i] = means[k] * gain * Float(b) + noise * rng.normal()
                }
            }
        }
        let spacing = SIMD3(config.spacing[0], config.spacing[1], is3D ? config.spacing[2] : 1)
        let origin = -spacing * SIMD3(Double(nx - 1), Double(ny - 1), Double(nz - 1)) / 2
        let affine = Affine(matrix: [
            [spacing.x, 0, 0, origin.x], [0, spacing.y, 0, origin.y], [0, 0, spacing.z, origin.z], [0, 0, 0, 1],
        ])
        return (
            Volume(depth: nz, height: ny, width: nx, data: image, spacing: spacing, affine: affine),
            Volume(depth: nz, height: ny, width: nx, data: label, spacing: spacing, affine: affine)
        )
    }

    /// Writes phantoms `0..<config.count` as `DIR/case000_image.nii.gz` (float32) and
    /// `DIR/case000_label.nii.gz` (uint8), plus `DIR/manifest.csv` listing them (columns
    /// `image,label`). Returns the manifest path.
    @discardableResult
    public static func writeDataset(_ config: PhantomConfig, to directory: String) throws -> String {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw MorphoTrainError.output(path: directory, message: "cannot create the folder (\(error.localizedDescription))")
        }
        var manifest = "image,label\n"
        for index in 0..<config.count {
            let (image, label) = make(config, index: index)
            let stem = String(format: "case%03d", index)
            try NIfTI.write(image, to: "\(directory)/\(stem)_image.nii.gz")
            try NIfTI.write(label, to: "\(directory)/\(stem)_label.nii.gz", datatype: .uint8, like: image)
            manifest += "\(stem)_image.nii.gz,\(stem)_label.nii.gz\n"
        }
        let path = "\(directory)/manifest.csv"
        do {
            try Data(manifest.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw MorphoTrainError.output(path: path, message: "cannot write (\(error.localizedDescription))")
        }
        return path
    }
}

/// A star-shaped region: an ellipsoid whose radius is modulated by a smooth function of direction.
struct Blob {
    var centre: SIMD3<Double>
    var radii: SIMD3<Double>
    /// Columns are the blob's axes in image coordinates.
    var rotation: Matrix3
    /// Radius modulation `1 + Σ amplitude·sin(frequency · u + phase)` over the unit direction `u`.
    var waves: [(frequency: SIMD3<Double>, phase: Double, amplitude: Double)]

    static func random(centre: SIMD3<Double>, radii: SIMD3<Double>, is3D: Bool, rng: inout RandomGenerator) -> Blob {
        let rotation: Matrix3 = is3D
            ? .rotation(x: rng.uniform(-0.6, 0.6), y: rng.uniform(-0.6, 0.6), z: rng.uniform(-Double.pi, Double.pi))
            : .rotation(x: 0, y: 0, z: rng.uniform(-Double.pi, Double.pi))
        var waves: [(SIMD3<Double>, Double, Double)] = []
        for _ in 0..<3 {
            let f = SIMD3(rng.uniform(-3, 3), rng.uniform(-3, 3), is3D ? rng.uniform(-3, 3) : 0)
            waves.append((f, rng.uniform(0, 2 * Double.pi), 0.05))
        }
        return Blob(centre: centre, radii: radii, rotation: rotation, waves: waves)
    }

    func contains(_ p: SIMD3<Double>) -> Bool {
        let q = rotation.transposed * (p - centre) / radii
        let r = (q * q).sum().squareRoot()
        if r > 1.2 { return false }
        let u = r > 0 ? q / r : q
        var limit = 1.0
        for w in waves { limit += w.amplitude * sin((w.frequency * u).sum() + w.phase) }
        return r < limit
    }
}

/// A 3×3 matrix of doubles (rows), enough for rotations of blobs and augmentation.
struct Matrix3 {
    var r0: SIMD3<Double>, r1: SIMD3<Double>, r2: SIMD3<Double>

    static let identity = Matrix3(r0: SIMD3(1, 0, 0), r1: SIMD3(0, 1, 0), r2: SIMD3(0, 0, 1))

    static func * (m: Matrix3, v: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3((m.r0 * v).sum(), (m.r1 * v).sum(), (m.r2 * v).sum())
    }

    static func * (a: Matrix3, b: Matrix3) -> Matrix3 {
        let t = b.transposed
        return Matrix3(
            r0: SIMD3((a.r0 * t.r0).sum(), (a.r0 * t.r1).sum(), (a.r0 * t.r2).sum()),
            r1: SIMD3((a.r1 * t.r0).sum(), (a.r1 * t.r1).sum(), (a.r1 * t.r2).sum()),
            r2: SIMD3((a.r2 * t.r0).sum(), (a.r2 * t.r1).sum(), (a.r2 * t.r2).sum()))
    }

    var transposed: Matrix3 {
        Matrix3(r0: SIMD3(r0.x, r1.x, r2.x), r1: SIMD3(r0.y, r1.y, r2.y), r2: SIMD3(r0.z, r1.z, r2.z))
    }

    /// Rotation by `z` about the z axis, then `y` about y, then `x` about x (radians):
    /// `Rx · Ry · Rz`.
    static func rotation(x: Double, y: Double, z: Double) -> Matrix3 {
        let rx = Matrix3(r0: SIMD3(1, 0, 0), r1: SIMD3(0, cos(x), -sin(x)), r2: SIMD3(0, sin(x), cos(x)))
        let ry = Matrix3(r0: SIMD3(cos(y), 0, sin(y)), r1: SIMD3(0, 1, 0), r2: SIMD3(-sin(y), 0, cos(y)))
        let rz = Matrix3(r0: SIMD3(cos(z), -sin(z), 0), r1: SIMD3(sin(z), cos(z), 0), r2: SIMD3(0, 0, 1))
        return rx * ry * rz
    }
}
