import MorphoTrain

/// The config loader on arbitrary bytes: written to `config.yaml` and read by `TaskConfig.load`
/// (UTF-8 check, YAML parse, every section of the task `model.kind` names, key checks).
enum ConfigFuzzing {
    static func run(_ bytes: UnsafeRawBufferPointer) -> FuzzOutcome {
        let path = ScratchFolder.write(bytes, as: "config.yaml")
        return .of { "\(try TaskConfig.load(path).kind)" }
    }
}
