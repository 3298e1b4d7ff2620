//! The tab's address book: names the person pinned to addresses ([`AddressBook`] in
//! `shared::view`), kept as JSON in `localStorage["tabchain.address_book"]`, so every tab of
//! this browser shares it and it survives reloads. The page has one book; the snapshot builder
//! and the wallet read it through [`current`], and [`replace`] saves a change.

use shared::view::AddressBook;
use std::cell::RefCell;
use std::rc::Rc;
use thiserror::Error;

pub const STORAGE_KEY: &str = "tabchain.address_book";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BookError {
    #[error("this browser offers no localStorage: the pin lasts until the page is closed")]
    NoStorage,
    #[error("localStorage refused the address book (full or blocked)")]
    Refused,
}

thread_local! {
    static BOOK: RefCell<Option<Rc<AddressBook>>> = const { RefCell::new(None) };
}

#[cfg(target_arch = "wasm32")]
fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The book, read from localStorage the first time (an unreadable entry counts as empty).
pub fn current() -> Rc<AddressBook> {
    BOOK.with(|book| Rc::clone(book.borrow_mut().get_or_insert_with(|| Rc::new(stored()))))
}

#[cfg(target_arch = "wasm32")]
fn stored() -> AddressBook {
    local_storage()
        .and_then(|storage| storage.get_item(STORAGE_KEY).ok().flatten())
        .and_then(|text| AddressBook::from_json(&text).ok())
        .unwrap_or_default()
}

/// Natively (tests) there is no storage: the book starts empty.
#[cfg(not(target_arch = "wasm32"))]
fn stored() -> AddressBook {
    AddressBook::default()
}

/// Makes `book` the page's book and saves it; the book is in use even when saving fails.
pub fn replace(book: AddressBook) -> Result<(), BookError> {
    let json = book.to_json();
    BOOK.with(|current| *current.borrow_mut() = Some(Rc::new(book)));
    save(&json)
}

#[cfg(target_arch = "wasm32")]
fn save(json: &str) -> Result<(), BookError> {
    local_storage()
        .ok_or(BookError::NoStorage)?
        .set_item(STORAGE_KEY, json)
        .map_err(|_| BookError::Refused)
}

#[cfg(not(target_arch = "wasm32"))]
fn save(_json: &str) -> Result<(), BookError> {
    Err(BookError::NoStorage)
}
