import CNIfTI
import Foundation
import MorphoIO
import MorphoTestSupport
import XCTest
@testable import MorphoTrain

/// `report.html` rendered by headless Chromium (Debian's `chromium`, installed by `make test`):
/// the screenshot has the window's size, is not blank, and shows the charts' series colour and
/// the overlay's class colour, so the inline SVG and the inline PNG were both drawn. Skipped,
/// saying so, where no Chromium is on PATH.
final class ReportRenderingTests: XCTestCase {
    /// The first of `chromium`, `chromium-browser` on PATH.
    static var chromium: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["chromium", "chromium-browser"] {
            for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return nil
    }

    /// A run report with every part: curves of 6 epochs, an overlay of a two-class phantom slice,
    /// the tables and a config.
    func runReport() throws -> RunReport {
        let history = (1...6).map { epoch -> EpochRecord in
            let e = Double(epoch)
            return EpochRecord(
                epoch: epoch, learningRate: 1e-3, loss: 1.2 / e, terms: [("dice", 0.6 / e), ("ce", 0.5 / e)], weights: [("dice", 1), ("ce", 1)],
                validation: [("dice_mean", 0.5 + e / 15), ("dice.1", 0.45 + e / 14), ("dice.2", 0.5 + e / 16), ("hd95.1", 12 / e), ("msd.1", 4 / e)],
                seconds: 2)
        }
        let (d, h, w) = (3, 48, 48)
        var image = [Float](repeating: 0, count: d * h * w), reference = image, prediction = image
        for z in 0..<d {
            for y in 0..<h {
                for x in 0..<w {
                    let i = (z * h + y) * w + x
                    let r = ((Double(x) - 24) * (Double(x) - 24) + (Double(y) - 24) * (Double(y) - 24)).squareRoot()
                    image[i] = Float(r < 18 ? 100 + 20 * sin(Double(x) / 3) : 10)
                    reference[i] = r < 8 ? 2 : r < 16 ? 1 : 0
                    prediction[i] = r < 9 ? 2 : r < 15 ? 1 : 0
                }
            }
        }
        let overlay = Plots.middleSliceOverlay(image: image, reference: reference, prediction: prediction, shape: [d, h, w])
        return RunReport(
            title: "MorphoSeg run render-check", kind: "segmentation", history: history, plannedEpochs: 6, scoreName: "dice_mean",
            resolvedConfig: "name: render-check\nmodel: {kind: segmentation}\n",
            overlay: try PNG.encode(overlay.pixels, width: overlay.width, height: overlay.height, color: .rgb))
    }

    func testHeadlessChromiumDrawsTheRunReport() throws {
        guard let chromium = Self.chromium else {
            throw XCTSkip("skipped rendering report.html in headless Chromium: neither chromium nor chromium-browser is on PATH (apt-get install chromium)")
        }
        let dir = try temporaryFolder("report-render")
        try runReport().document.write(to: dir + "/report.html")
        let shot = try render(chromium, page: dir + "/report.html", folder: dir)
        XCTAssertEqual([shot.width, shot.height], [1200, 2000])
        XCTAssertGreaterThan(shot.distinctColors, 50, "the screenshot is (nearly) uniform")
        XCTAssertGreaterThan(shot.nonWhiteFraction, 0.03)
        // The chart's second series (#1f77b4) and the overlay's class-1 outline (230, 25, 75).
        XCTAssertGreaterThan(shot.count(near: (31, 119, 180)), 50, "no chart line drawn")
        XCTAssertGreaterThan(shot.count(near: (230, 25, 75)), 50, "no overlay drawn")
    }

    func testHeadlessChromiumDrawsTheEvaluationReport() throws {
        guard let chromium = Self.chromium else {
            throw XCTSkip("skipped rendering the evaluation report.html in headless Chromium: neither chromium nor chromium-browser is on PATH (apt-get install chromium)")
        }
        let dir = try temporaryFolder("evaluation-render")
        for folder in ["pred", "ref"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(folder)", withIntermediateDirectories: true)
        }
        for (name, width) in [("case0", 10), ("case1", 6)] {
            for (folder, w) in [("pred", width), ("ref", 10)] {
                var data = [Float](repeating: 0, count: 3 * 32 * 32)
                for z in 0..<3 { for y in 8..<20 { for x in 8..<(8 + w) { data[(z * 32 + y) * 32 + x] = 1 } } }
                try NIfTI.write(Volume(depth: 3, height: 32, width: 32, data: data), to: "\(dir)/\(folder)/\(name).nii.gz", datatype: .uint8)
            }
        }
        let report = EvaluationReport(try FolderEvaluation.folders(prediction: dir + "/pred", reference: dir + "/ref"))
        try report.document.write(to: dir + "/report.html")
        let shot = try render(chromium, page: dir + "/report.html", folder: dir)
        XCTAssertEqual([shot.width, shot.height], [1200, 2000])
        XCTAssertGreaterThan(shot.count(near: (230, 25, 75)), 50, "no overlay drawn")
        // Table borders (#ccc) and header shading (#f3f3f3).
        XCTAssertGreaterThan(shot.count(near: (204, 204, 204), tolerance: 6), 200, "no table drawn")
    }

    /// `chromium --headless --screenshot` of `page` at 1200×2000, decoded.
    func render(_ chromium: String, page: String, folder: String) throws -> Screenshot {
        let output = folder + "/screenshot.png"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = [
            "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--user-data-dir=\(folder)/profile",
            "--screenshot=\(output)", "--window-size=1200,2000", URL(fileURLWithPath: page).absoluteString,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let start = Date()
        try process.run()
        while process.isRunning && Date().timeIntervalSince(start) < 120 { usleep(100_000) }
        if process.isRunning {
            process.terminate()
            XCTFail("chromium did not finish in 120 s")
        }
        process.waitUntilExit()
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: output), "chromium wrote no screenshot")
        return try Screenshot(png: [UInt8](bytes))
    }
}

/// An 8-bit RGB or RGBA PNG, non-interlaced, as Chromium writes screenshots, decoded to RGB:
/// chunks, zlib inflation of IDAT, the five scanline filters (PNG specification, section 9).
struct Screenshot {
    var width = 0, height = 0
    var rgb: [UInt8] = []

    init(png: [UInt8]) throws {
        guard png.count > 33, Array(png.prefix(8)) == [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] else {
            throw MorphoTrainError.output(path: "screenshot.png", message: "not a PNG")
        }
        func u32(_ at: Int) -> Int { png[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        var idat: [UInt8] = [], colorType = 0, bitDepth = 0, interlace = 0
        var at = 8
        while at + 8 <= png.count {
            let length = u32(at)
            let type = String(decoding: png[(at + 4)..<(at + 8)], as: UTF8.self)
            let data = png[(at + 8)..<(at + 8 + length)]
            if type == "IHDR" {
                width = u32(at + 8)
                height = u32(at + 12)
                bitDepth = Int(data[data.startIndex + 8])
                colorType = Int(data[data.startIndex + 9])
                interlace = Int(data[data.startIndex + 12])
            }
            if type == "IDAT" { idat += data }
            at += 12 + length
        }
        guard bitDepth == 8, colorType == 2 || colorType == 6, interlace == 0 else {
            throw MorphoTrainError.output(path: "screenshot.png", message: "bit depth \(bitDepth), colour type \(colorType) not decoded here")
        }
        let channels = colorType == 6 ? 4 : 3
        let rowBytes = width * channels
        var length = UInt((rowBytes + 1) * height)
        var raw = [UInt8](repeating: 0, count: Int(length))
        guard uncompress(&raw, &length, idat, UInt(idat.count)) == Z_OK, Int(length) == raw.count else {
            throw MorphoTrainError.output(path: "screenshot.png", message: "IDAT does not inflate to \(raw.count) bytes")
        }
        var previous = [UInt8](repeating: 0, count: rowBytes), current = previous
        rgb.reserveCapacity(width * height * 3)
        for row in 0..<height {
            let base = row * (rowBytes + 1)
            let filter = raw[base]
            for i in 0..<rowBytes {
                let x = Int(raw[base + 1 + i])
                let a = i >= channels ? Int(current[i - channels]) : 0, b = Int(previous[i]), c = i >= channels ? Int(previous[i - channels]) : 0
                let predictor: Int
                switch filter {
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
                default: predictor = 0
                }
                current[i] = UInt8((x + predictor) & 0xff)
            }
            for px in 0..<width { rgb += current[(px * channels)..<(px * channels + 3)] }
            swap(&previous, &current)
        }
    }

    /// The pixel at `i` (0-based, row-major) as (r, g, b).
    func pixel(_ i: Int) -> (Int, Int, Int) { (Int(rgb[3 * i]), Int(rgb[3 * i + 1]), Int(rgb[3 * i + 2])) }

    var distinctColors: Int {
        var seen = Set<Int>()
        for i in 0..<(width * height) {
            let (r, g, b) = pixel(i)
            seen.insert(r << 16 | g << 8 | b)
        }
        return seen.count
    }

    /// The share of pixels with a channel below 240.
    var nonWhiteFraction: Double {
        var count = 0
        for i in 0..<(width * height) {
            let (r, g, b) = pixel(i)
            if min(r, g, b) < 240 { count += 1 }
        }
        return Double(count) / Double(max(1, width * height))
    }

    /// Pixels within `tolerance` of `color` in every channel.
    func count(near color: (Int, Int, Int), tolerance: Int = 24) -> Int {
        var count = 0
        for i in 0..<(width * height) {
            let (r, g, b) = pixel(i)
            if abs(r - color.0) <= tolerance, abs(g - color.1) <= tolerance, abs(b - color.2) <= tolerance { count += 1 }
        }
        return count
    }
}
