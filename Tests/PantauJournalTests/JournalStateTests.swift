import PantauCore
import Testing

@testable import PantauJournal

@Suite struct JournalStateTests {
    @Test func savedStateSurvivesARestartAndIsReplaced() throws {
        let folder = try TempFolder()
        let clock = TestClock()
        do {
            let journal = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
            #expect(journal.loadState(key: "pipeline") == nil)
            journal.saveState(key: "pipeline", Array("first".utf8))
            journal.saveState(key: "pipeline", Array("second".utf8))
            journal.saveState(key: "other", [0, 1, 2])
            journal.close()
        }
        let reopened = try Journal(config: testConfig(folder), clock: clock, logger: quietLogger)
        #expect(reopened.loadState(key: "pipeline") == Array("second".utf8))
        #expect(reopened.loadState(key: "other") == [0, 1, 2])
        reopened.close()
    }
}
