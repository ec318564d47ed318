import Foundation

extension PostprocessingPlan {
    /// What `morphoseg train` does once a segmentation run ends (nnU-Net decides its
    /// postprocessing the same way, after training): the best checkpoint predicts every
    /// validation subject (on the network's grid, padding removed, as validation does), `decide`
    /// chooses the largest-component steps that raise the mean validation Dice, and a non-empty
    /// plan is stored in the metadata of `best.safetensors` and `last.safetensors` (where
    /// `Segmenter` finds it). The figures go to `postprocessing.json` in the run folder.
    ///
    /// Nothing is decided (and no file changes) without validation subjects or a best checkpoint.
    ///
    /// - Returns: the decision, or nil when nothing was decided.
    /// - Throws: `MorphoIOError` / `MorphoTrainError` reading or writing a checkpoint.
    @discardableResult
    public static func decideAfterTraining(
        _ task: SegmentationTask, output: String, progress: ProgressReporter
    ) throws -> Decision? {
        let best = output + "/best.safetensors"
        guard !task.dataset.validation.isEmpty, FileManager.default.fileExists(atPath: best) else { return nil }
        let segmenter = try Segmenter(checkpoint: best)
        let network = segmenter.network
        let cases = task.dataset.validation.map { s -> Case in
            let window = SlidingWindow(segmenter.config, shape: s.image.shape)
            let probs = window.probabilities(s.image, fill: s.prepared.fill) { network($0) }
            let predicted = s.prepared.unpadded(SlidingWindow.argmax(probs))
            let reference = s.prepared.unpadded(s.labels)
            return Case(prediction: predicted.data, reference: reference.data, shape: reference.shape)
        }
        let decision = decide(cases, classes: task.dataset.classes)
        func list(_ v: [Double]) -> String { "[" + v.map { EpochRecord.number($0) }.joined(separator: ", ") + "]" }
        let record = "{\"plan\": \(decision.plan.json), \"validation_cases\": \(cases.count), "
            + "\"dice_before\": \(list(decision.diceBefore)), \"dice_after\": \(list(decision.diceAfter))}\n"
        do {
            try record.write(toFile: output + "/postprocessing.json", atomically: true, encoding: .utf8)
        } catch {
            throw MorphoTrainError.output(path: output + "/postprocessing.json", message: "cannot write (\(error.localizedDescription))")
        }
        progress.note(decision.summary)
        guard !decision.plan.isIdentity else { return decision }
        for path in [best, output + "/last.safetensors"] where FileManager.default.fileExists(atPath: path) {
            var c = try Checkpoint.read(path)
            c.extraMetadata[metadataKey] = decision.plan.json
            try c.write(to: path)
        }
        return decision
    }
}

extension PostprocessingPlan.Decision {
    /// One line for the run's log.
    public var summary: String {
        func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
        let steps = (plan.foreground ? ["largest foreground component"] : [])
            + plan.classes.map { "largest component of class \($0)" }
        return "postprocessing: \(steps.isEmpty ? "none" : steps.joined(separator: ", ")) (mean validation Dice "
            + String(format: "%.4f -> %.4f)", mean(diceBefore), mean(diceAfter))
    }
}
