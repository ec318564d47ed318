import Foundation
import XCTest
@testable import MorphoTrain
import MorphoTestSupport

/// Largest-component postprocessing and nnU-Net's rule for choosing it from validation Dice.
final class PostprocessingPlanTests: XCTestCase {
    /// A 2D label map from rows of digits.
    func labels(_ rows: [String]) -> (values: [Float], shape: [Int]) {
        (rows.flatMap { $0.map { Float(String($0))! } }, [1, rows.count, rows[0].count])
    }

    let reference = [
        "0000000000",
        "0111000000",
        "0122100000",
        "0111000000",
        "0000000000",
    ]

    func testKeepForegroundRemovesIslandsOfAnyClass() {
        var (p, shape) = labels([
            "0000000002",
            "0111000000",
            "0122100110",
            "0111000000",
            "0000000000",
        ])
        LargestComponent.keepForeground(&p, shape: shape, connectivity: .full)
        XCTAssertEqual(p, labels(reference).values)
    }

    func testKeepOneClassLeavesTheOthers() {
        var (p, shape) = labels([
            "0000000002",
            "0111000000",
            "0122100110",
            "0111000000",
            "0000000000",
        ])
        LargestComponent.keep(class: 2, &p, shape: shape, connectivity: .face)
        XCTAssertEqual(p, labels([
            "0000000000",
            "0111000000",
            "0122100110",
            "0111000000",
            "0000000000",
        ]).values)
    }

    func testStrayIslandsInEveryCaseChooseTheForegroundStep() {
        let (r, shape) = labels(reference)
        let (p, _) = labels([
            "0000000011",
            "0111000011",
            "0122100000",
            "0111000000",
            "0000000000",
        ])
        let d = PostprocessingPlan.decide([.init(prediction: p, reference: r, shape: shape)], classes: 3)
        XCTAssertEqual(d.plan, PostprocessingPlan(foreground: true))
        XCTAssertLessThan(d.diceBefore[0], 1)
        XCTAssertEqual(d.diceAfter, [1, 1])
    }

    /// An island of class 2 touching class 1 survives the foreground step; only class 2's own
    /// step removes it.
    func testAnIslandInsideTheForegroundChoosesThatClassStep() {
        let (r, shape) = labels(reference)
        let (p, _) = labels([
            "0000000000",
            "0111200000",
            "0122100000",
            "0111000000",
            "0000000000",
        ])
        let d = PostprocessingPlan.decide([.init(prediction: p, reference: r, shape: shape)], classes: 3, connectivity: .face)
        XCTAssertEqual(d.plan, PostprocessingPlan(classes: [2], connectivity: .face))
        XCTAssertEqual(d.diceAfter[1], 1)
    }

    /// A reference with two true components: keeping the largest would lose one, so nothing is
    /// chosen.
    func testTrueSecondComponentsKeepThePlanEmpty() {
        let (r, shape) = labels([
            "0000000000",
            "0111000110",
            "0122100110",
            "0111000000",
            "0000000000",
        ])
        let d = PostprocessingPlan.decide([.init(prediction: r, reference: r, shape: shape)], classes: 3)
        XCTAssertTrue(d.plan.isIdentity)
        XCTAssertEqual(d.diceBefore, d.diceAfter)
    }

    func testPlanSurvivesItsJSON() {
        let plan = PostprocessingPlan(foreground: true, classes: [3, 1], connectivity: .face)
        XCTAssertEqual(plan.classes, [1, 3])
        XCTAssertEqual(PostprocessingPlan(json: plan.json), plan)
        XCTAssertNil(PostprocessingPlan(json: "{\"foreground\": 1}"))
    }
}
