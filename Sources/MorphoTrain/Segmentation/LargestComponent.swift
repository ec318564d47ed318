import MorphoKernels

/// nnU-Net's postprocessing operation: of a predicted structure, keep only its largest connected
/// component and give the rest to the background (label 0). Applied to the foreground as a whole
/// (all labels > 0 together: stray islands of any class go) or to one class.
public enum LargestComponent {
    /// Foreground voxels outside the largest foreground component become 0.
    ///
    /// - Parameters:
    ///   - labels: class indices `[D, H, W]` (x fastest; `D = 1` in 2D) as floats.
    ///   - shape: `[D, H, W]`.
    public static func keepForeground(_ labels: inout [Float], shape: [Int], connectivity: Connectivity) {
        keep(&labels, shape: shape, connectivity: connectivity) { $0 > 0 }
    }

    /// Voxels of class `k` outside its largest component become 0; other classes are untouched.
    public static func keep(class k: Int, _ labels: inout [Float], shape: [Int], connectivity: Connectivity) {
        keep(&labels, shape: shape, connectivity: connectivity) { $0 == Float(k) }
    }

    static func keep(_ labels: inout [Float], shape: [Int], connectivity: Connectivity, member: (Float) -> Bool) {
        let components = ConnectedComponents(mask: labels.map(member), shape: shape, connectivity: connectivity)
        guard components.count > 1, let largest = components.largest else { return }
        let keep = Int32(largest)
        for i in labels.indices where components.labels[i] != 0 && components.labels[i] != keep { labels[i] = 0 }
    }
}
