import XCTest
@testable import Engine

final class TensorTypeTests: XCTestCase {
    func testBlockLayouts() {
        XCTAssertEqual(GGMLType.q4_K.rowBytes(512), 288)
        XCTAssertEqual(GGMLType.q8_0.rowBytes(64), 68)
        XCTAssertNil(GGMLType.q8_0.rowBytes(33))
        XCTAssertEqual(GGMLType.q6_K.description, "Q6_K")
    }
}
