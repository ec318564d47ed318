import Foundation
import MorphoIO
@testable import MorphoTrain

/// Writes small phantom datasets (`Phantom.make`, 2D 32×32, 3 classes) as users have them: in the
/// nnU-Net v2 layout (one file per channel) or the Decathlon layout (channels in one 4D file). A
/// second channel, when asked for, is the first one negated.
enum PhantomDatasetFolder {
    static let labelNames = ["background", "outer", "inner"]

    static func phantom(count: Int, size: [Int] = [32, 32], seed: UInt64 = 5) -> PhantomConfig {
        PhantomConfig(dims: 2, size: size, count: count, classes: 3, noise: 0.05, bias: 0, spacing: [1, 1, 1], seed: seed)
    }

    /// Channel volumes of case `index`.
    static func channels(_ image: Volume, count: Int) -> [Volume] {
        (0..<count).map { c in
            var v = image
            if c == 1 { v.data = v.data.map { -$0 } }
            return v
        }
    }

    /// nnU-Net v2: `dataset.json`, `imagesTr/case_XXX_000c.nii.gz`, `labelsTr/case_XXX.nii.gz`,
    /// `imagesTs` with `test` cases.
    static func nnUNet(at root: String, training: Int, test: Int = 0, channels: Int = 1) throws {
        for folder in ["imagesTr", "labelsTr"] + (test > 0 ? ["imagesTs"] : []) {
            try FileManager.default.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
        }
        let p = phantom(count: training + test)
        for i in 0..<(training + test) {
            let (image, label) = Phantom.make(p, index: i)
            let id = String(format: "case_%03d", i)
            let folder = i < training ? "imagesTr" : "imagesTs"
            for (c, v) in Self.channels(image, count: channels).enumerated() {
                try NIfTI.write(v, to: "\(root)/\(folder)/\(id)_\(String(format: "%04d", c)).nii.gz")
            }
            if i < training { try NIfTI.write(label, to: "\(root)/labelsTr/\(id).nii.gz", datatype: .uint8) }
        }
        let channelNames = (0..<channels).map { "\"\($0)\": \"\(["T1", "T2"][$0])\"" }.joined(separator: ", ")
        try """
            {"name": "Phantom", "channel_names": {\(channelNames)},
             "labels": {"background": 0, "outer": 1, "inner": 2},
             "numTraining": \(training), "file_ending": ".nii.gz"}
            """.write(toFile: "\(root)/dataset.json", atomically: true, encoding: .utf8)
    }

    /// Decathlon: `dataset.json` listing `./imagesTr/case_XXX.nii.gz` (4D when `channels > 1`)
    /// and `./labelsTr/case_XXX.nii.gz`, `test` images in `imagesTs`.
    static func decathlon(at root: String, training: Int, test: Int = 0, channels: Int = 2) throws {
        for folder in ["imagesTr", "labelsTr", "imagesTs"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
        }
        let p = phantom(count: training + test)
        var entries: [String] = [], tests: [String] = []
        for i in 0..<(training + test) {
            let (image, label) = Phantom.make(p, index: i)
            let id = String(format: "case_%03d", i)
            let parts = Self.channels(image, count: channels)
            let stacked = Volume(
                channels: channels, depth: image.depth, height: image.height, width: image.width,
                data: parts.flatMap(\.data), spacing: image.spacing, affine: image.affine)
            if i < training {
                try NIfTI.write(stacked, to: "\(root)/imagesTr/\(id).nii.gz")
                try NIfTI.write(label, to: "\(root)/labelsTr/\(id).nii.gz", datatype: .uint8)
                entries.append("{\"image\": \"./imagesTr/\(id).nii.gz\", \"label\": \"./labelsTr/\(id).nii.gz\"}")
            } else {
                try NIfTI.write(stacked, to: "\(root)/imagesTs/\(id).nii.gz")
                tests.append("\"./imagesTs/\(id).nii.gz\"")
            }
        }
        let modality = (0..<channels).map { "\"\($0)\": \"\(["FLAIR", "T1w"][$0])\"" }.joined(separator: ", ")
        try """
            {"name": "Phantom", "modality": {\(modality)},
             "labels": {"0": "background", "1": "outer", "2": "inner"},
             "numTraining": \(training), "numTest": \(test),
             "training": [\(entries.joined(separator: ", "))], "test": [\(tests.joined(separator: ", "))]}
            """.write(toFile: "\(root)/dataset.json", atomically: true, encoding: .utf8)
    }
}
