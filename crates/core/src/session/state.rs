//! Session states with the original's string values. A `BrokerSession` moves
//! `starting → running → completed | failed | cancelled` (or `starting → cancelled`
//! when cancelled before `execute`, `starting → failed` when the deadline already passed).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    Starting,
    Running,
    WaitingForTool,
    Completed,
    Cancelled,
    Failed,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Starting => "starting",
            SessionState::Running => "running",
            SessionState::WaitingForTool => "waiting_for_tool",
            SessionState::Completed => "completed",
            SessionState::Cancelled => "cancelled",
            SessionState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<SessionState> {
        use SessionState::*;
        [Starting, Running, WaitingForTool, Completed, Cancelled, Failed]
            .into_iter()
            .find(|state| state.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, SessionState::Completed | SessionState::Cancelled | SessionState::Failed)
    }

    /// Whether the state machine allows `self → next`.
    pub fn can_transition_to(self, next: SessionState) -> bool {
        use SessionState::*;
        matches!(
            (self, next),
            (Starting, Running | Failed | Cancelled)
                | (Running, WaitingForTool | Completed | Failed | Cancelled)
                | (WaitingForTool, Running | Failed | Cancelled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::SessionState;
    use super::SessionState::*;

    #[test]
    fn terminal_states_allow_no_transition() {
        for from in [Completed, Cancelled, Failed] {
            assert!(from.is_terminal());
            for to in [Starting, Running, WaitingForTool, Completed, Cancelled, Failed] {
                assert!(!from.can_transition_to(to));
            }
        }
    }

    #[test]
    fn allowed_transitions_match_the_original_machine() {
        assert!(Starting.can_transition_to(Running));
        assert!(Starting.can_transition_to(Cancelled));
        assert!(Starting.can_transition_to(Failed));
        assert!(!Starting.can_transition_to(Completed));
        assert!(Running.can_transition_to(Completed));
        assert!(!Running.can_transition_to(Starting));
        assert_eq!(WaitingForTool.as_str(), "waiting_for_tool");
        assert_eq!(SessionState::parse("waiting_for_tool"), Some(WaitingForTool));
        assert_eq!(SessionState::parse("done"), None);
    }
}
