//! The names we know addresses by: the address book the person pins, and every name a peer,
//! the person or we ourselves gave, sanitized, with where it came from.

use super::*;

// ---- the address book ----

/// A name the person gave an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub name: String,
    pub address: Address,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PinError {
    #[error("a pinned name needs at least one visible character")]
    EmptyName,
    #[error("a pinned name cannot be a 40-digit address")]
    NameIsAnAddress,
    #[error("the address book is full ({MAX_PINS} names): remove one first")]
    Full,
}

/// Names the person pinned to addresses. A pinned name is an identity the person vouched for:
/// it wins over any peer that says hello with the same name. Names are unique without case.
/// Stored as JSON (`{"pins":[{"name":…,"address":…}]}`) by each driver: a file in the native
/// node's data directory, localStorage in the browser.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressBook {
    pins: Vec<Pin>,
}

impl AddressBook {
    /// Parses a stored book, keeping only well-formed pins (at most [`MAX_PINS`]).
    pub fn from_json(text: &str) -> Result<AddressBook, serde_json::Error> {
        let stored: AddressBook = serde_json::from_str(text)?;
        let mut book = AddressBook::default();
        for pin in stored.pins {
            let _ = book.pin(&pin.name, pin.address);
        }
        Ok(book)
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an address book always serializes")
    }
    pub fn pins(&self) -> &[Pin] {
        &self.pins
    }
    /// Pins `name` to `address`, replacing what the name pointed at. Returns the name as kept.
    pub fn pin(&mut self, name: &str, address: Address) -> Result<String, PinError> {
        if parse_address(name).is_some() {
            return Err(PinError::NameIsAnAddress);
        }
        let name = sanitize_name(name);
        if name.is_empty() {
            return Err(PinError::EmptyName);
        }
        if let Some(pin) = self.pins.iter_mut().find(|pin| same_name(&pin.name, &name)) {
            pin.name = name.clone();
            pin.address = address;
        } else {
            if self.pins.len() >= MAX_PINS {
                return Err(PinError::Full);
            }
            self.pins.push(Pin {
                name: name.clone(),
                address,
            });
        }
        Ok(name)
    }
    /// Removes the pin of `name`; whether there was one.
    pub fn unpin(&mut self, name: &str) -> bool {
        let before = self.pins.len();
        let name = sanitize_name(name);
        self.pins.retain(|pin| !same_name(&pin.name, &name));
        self.pins.len() != before
    }
    pub fn get(&self, name: &str) -> Option<&Pin> {
        self.pins.iter().find(|pin| same_name(&pin.name, name))
    }
    /// The pinned name of `address` (the first, if several).
    pub fn name_of(&self, address: &Address) -> Option<&str> {
        self.pins
            .iter()
            .find(|pin| pin.address == *address)
            .map(|pin| pin.name.as_str())
    }
}

// ---- names ----

/// Who told us a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    /// Our own name.
    Us,
    /// The person pinned it in the address book.
    Pinned,
    /// A peer said it in its hello: a claim, not an identity.
    Peer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KnownName {
    pub name: String,
    pub source: NameSource,
}

/// The names we know addresses by: ours, then the person's pins, then what peers claimed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    by_address: HashMap<Address, KnownName>,
}

impl Names {
    pub fn new(node: &Node, book: &AddressBook) -> Names {
        let mut by_address = HashMap::new();
        let mut add = |address: Address, name: String, source: NameSource| {
            by_address
                .entry(address)
                .or_insert(KnownName { name, source });
        };
        add(node.address(), sanitize_name(node.name()), NameSource::Us);
        for pin in book.pins() {
            add(pin.address, pin.name.clone(), NameSource::Pinned);
        }
        for peer in node.peers().filter(|peer| !peer.banned) {
            if let (Some(address), Some(name)) = (peer.address, peer.name.as_deref()) {
                let name = sanitize_name(name);
                if !name.is_empty() {
                    add(address, name, NameSource::Peer);
                }
            }
        }
        Names { by_address }
    }
    /// Adds what peers we no longer have said (see [`PeerMemory`]), below every other source.
    pub fn with_remembered(mut self, peers: &[PeerView]) -> Names {
        for peer in peers.iter().filter(|peer| !peer.banned) {
            if let (Some(address), Some(name)) = (peer.address, peer.name.clone()) {
                self.by_address.entry(address).or_insert(KnownName {
                    name,
                    source: NameSource::Peer,
                });
            }
        }
        self
    }
    pub fn get(&self, address: &Address) -> Option<&KnownName> {
        self.by_address.get(address)
    }
    /// "alice (you)", "bob" or none: the name alone, for where the address is shown beside it.
    pub fn name(&self, address: &Address) -> Option<String> {
        self.get(address).map(|known| match known.source {
            NameSource::Us => format!("{} (you)", known.name),
            _ => known.name.clone(),
        })
    }
    /// "bob (3f2a9c1e)", "alice (you) (1a2b3c4d)", or the start of the address alone.
    pub fn label(&self, address: &Address) -> String {
        match self.name(address) {
            Some(name) => labelled(&name, address),
            None => address.short(),
        }
    }
}
