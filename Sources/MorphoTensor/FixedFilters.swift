import MorphoKernels

// Differentiable fixed-kernel filters on images `[N, C, H, W]` / `[N, C, D, H, W]`: box sums
// and separable correlations (Gaussian smoothing, Sobel derivatives). Each channel of each item
// is filtered on its own, with zero padding and "same" size, by the MorphoKernels routines; the
// backward is the filter's adjoint (the box sum is self-adjoint, a correlation's adjoint
// reverses its taps). The kernels are constants: only the image is differentiated.

extension Tensor {
    /// The sum over the `window`^nd neighbourhood of every voxel (zero padding, same size):
    /// PyTorch `conv2d/conv3d(x, ones(window^nd), padding: window/2)` per channel. O(1) per voxel
    /// whatever the window (running sums). `window` is odd, in voxels along every spatial axis.
    public func boxSum(window: Int) -> Tensor {
        let (planes, extent) = filterLayout("boxSum")
        precondition(window >= 1 && window % 2 == 1, "boxSum: the window must be odd and positive, got \(window)")
        let y = Tensor(shape: shape) { out in
            MorphoKernels.boxSum(storage.pointer, into: out, planes: planes, extent: extent, window: window)
        }
        return Tensor.record(y, inputs: [self]) { [shape] g in
            [Tensor(shape: shape) { dx in
                MorphoKernels.boxSum(g.storage.pointer, into: dx, planes: planes, extent: extent, window: window)
            }]
        }
    }

    /// Correlation (no kernel flip, as PyTorch `conv2d/conv3d`) of every channel with a fixed
    /// separable `kernel`, zero padding, same size. A 2D image needs a kernel with `d = [1]`.
    public func correlated(with kernel: SeparableKernel) -> Tensor {
        let (planes, extent) = filterLayout("correlated(with:)")
        precondition(spatialRank == 3 || kernel.d == [1], "correlated(with:): a 2D image \(shape) needs a kernel without D taps")
        let y = Tensor(shape: shape) { out in
            separableCorrelate(storage.pointer, into: out, planes: planes, extent: extent, kernel: kernel)
        }
        return Tensor.record(y, inputs: [self]) { [shape] g in
            [Tensor(shape: shape) { dx in
                separableCorrelateAdjoint(g.storage.pointer, into: dx, planes: planes, extent: extent, kernel: kernel)
            }]
        }
    }

    /// Isotropic Gaussian smoothing of standard deviation `sigma` voxels, seed 000's
    /// `_gaussian_kernel` (size 2·⌈3σ⌉ + 1, normalised) applied separably over the 2 or 3
    /// spatial axes.
    public func gaussianSmoothed(sigma: Double) -> Tensor {
        correlated(with: .gaussian(sigma: sigma, rank: spatialRank))
    }

    /// The Sobel derivative along spatial `axis` (2D: 0 = H, 1 = W; 3D: 0 = D, 1 = H, 2 = W):
    /// `[-1, 0, 1]` along the axis ⊗ `[1, 2, 1]` along the others (unnormalised, as the seed).
    public func sobel(axis: Int) -> Tensor {
        correlated(with: .sobel(axis: axis, rank: spatialRank))
    }

    /// (N·C, spatial extent) of an image tensor for the plane-wise kernels.
    func filterLayout(_ what: String) -> (Int, SpatialExtent) {
        precondition(rank == 4 || rank == 5, "\(what): expected [N, C, H, W] or [N, C, D, H, W], got \(shape)")
        return (shape[0] * shape[1], SpatialExtent(spatialShape))
    }
}
