//! The program: starts a node from the [`Settings`], then opens the interactive [`menu`] or
//! runs one subcommand ([`app`]). It sits above both, so neither imports the other's caller.

use crate::app::{self, node_options, AppError};
use crate::cli::{Command, Settings};
use crate::menu;
use crate::runtime::NodeHandle;
use std::io::Write;
use tokio::sync::mpsc;

/// Runs the program: the menu without a subcommand, else the subcommand. `input` yields the
/// lines typed on stdin (the menu's only source), `None` at the end of input.
pub async fn run(
    settings: Settings,
    command: Option<Command>,
    out: &mut dyn Write,
    input: mpsc::Receiver<String>,
) -> Result<(), AppError> {
    if let Some(command) = &command {
        if let Some(result) = app::address_book_command(&settings, command, out) {
            return result;
        }
    }
    let handle = NodeHandle::start(node_options(&settings)).await?;
    let result = match command {
        None => menu::run(&handle, &settings, out, input).await,
        Some(command) => app::run_command(&handle, &settings, command, out).await,
    };
    handle.shutdown().await;
    result
}
