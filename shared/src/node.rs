//! The node state machine (see issue 4).
