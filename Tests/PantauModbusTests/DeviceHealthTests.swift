import PantauCore
import Testing

@testable import PantauModbus

@Suite struct DeviceHealthTests {
    enum Step: Sendable { case good, silent, exception }

    /// Feeds polls to a fresh health and returns the transitions and the final backoff factor.
    func run(_ steps: [Step], policy: OfflinePolicy = OfflinePolicy()) -> ([DeviceHealth.Transition?], DeviceHealth) {
        var health = DeviceHealth()
        let transitions = steps.enumerated().map { index, step in
            health.record(
                error: step == .good ? nil : ModbusError(code: .timeout), answered: step != .silent,
                gotReadings: step == .good, at: UnixMillis(index), policy: policy)
        }
        return (transitions, health)
    }

    @Test func startsUnknownAndTheFirstAnswerMakesItOnline() {
        #expect(DeviceHealth().online == nil)
        let (transitions, health) = run([.good, .good])
        #expect(transitions == [.cameOnline, nil])
        #expect(health.online == true)
    }

    @Test func threeSilentPollsMakeItOfflineOnceEvenFromUnknown() {
        let (transitions, health) = run([.silent, .silent, .silent, .silent, .silent])
        #expect(transitions == [nil, nil, .wentOffline, nil, nil])
        #expect(health.online == false)
        // Backoff factor 8, but probes are never further apart than max(poll interval, 5 s).
        #expect(health.effectiveInterval(base: .seconds(10), policy: OfflinePolicy()) == .seconds(10))
        #expect(health.effectiveInterval(base: .seconds(1), policy: OfflinePolicy()) == .seconds(5))
        #expect(health.effectiveInterval(base: Interval(milliseconds: 500), policy: OfflinePolicy()) == .seconds(4))
    }

    @Test func exceptionsAreAnswersAndInterruptASilentStreak() {
        let (transitions, health) = run([.good, .silent, .silent, .exception, .silent, .silent])
        #expect(transitions == [.cameOnline, nil, nil, nil, nil, nil])
        #expect(health.online == true)
        #expect(health.consecutiveErrors == 5)
        #expect(health.errorsTotal == 5)
    }

    @Test func recoveryResetsTheBackoff() {
        let (transitions, health) = run([.silent, .silent, .silent, .silent, .good])
        #expect(transitions.last == .cameOnline)
        #expect(health.effectiveInterval(base: .seconds(10), policy: OfflinePolicy()) == .seconds(10))
        #expect(health.consecutiveErrors == 0)
        #expect(health.lastReadingAt == 4)
    }

    @Test func policyDecidesHowManySilentPollsMakeOffline() {
        let (transitions, _) = run([.silent], policy: OfflinePolicy(failuresBeforeOffline: 1))
        #expect(transitions == [.wentOffline])
    }
}
