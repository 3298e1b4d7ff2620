//! The one resolver that turns what a person typed into a recipient, and the balances shown
//! beside their names.

use super::*;

// ---- the recipient resolver ----

/// A 40-hex-digit address (either case), or `None`.
pub fn parse_address(text: &str) -> Option<Address> {
    let text = text.trim();
    (text.len() == 40)
        .then(|| Address::from_hex(text).ok())
        .flatten()
}

/// A name and the address it stands for, as offered to the person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub name: String,
    pub address: Address,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.address.to_hex())
    }
}

fn list(candidates: &[Candidate]) -> String {
    if candidates.is_empty() {
        return "none".into();
    }
    let items: Vec<String> = candidates.iter().map(ToString::to_string).collect();
    items.join(", ")
}

/// How a recipient was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientSource {
    Address,
    Pinned,
    Peer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recipient {
    pub address: Address,
    /// The name it goes by, when it was chosen by name.
    pub name: Option<String>,
    pub source: RecipientSource,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RecipientError {
    #[error("choose a peer or paste an address")]
    Empty,
    #[error("`{text}` is neither a pinned name, a peer's name nor a 40-digit address (peers: {})", list(.known))]
    Unknown { text: String, known: Vec<Candidate> },
    #[error("{} peers say they are `{name}`: pay one by its address, or pin the name to one ({})", .candidates.len(), list(.candidates))]
    Ambiguous {
        name: String,
        candidates: Vec<Candidate>,
    },
}

/// The one way a typed recipient becomes an address, in both UIs:
/// 1. a 40-digit address (or "name (address)", as suggestion lists show it) is that address;
/// 2. a pinned name (without case) is the address the person pinned it to;
/// 3. a name (without case) that ready peers said hello with is their address, if they all
///    have the same one; two addresses under one name are refused, listing them.
///
/// Our own address is never a candidate by name.
pub fn resolve_recipient(
    text: &str,
    peers: &[PeerView],
    book: &AddressBook,
    us: &Address,
) -> Result<Recipient, RecipientError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RecipientError::Empty);
    }
    let suggested = text
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'));
    if let Some(address) = parse_address(text).or_else(|| suggested.and_then(parse_address)) {
        return Ok(Recipient {
            address,
            name: None,
            source: RecipientSource::Address,
        });
    }
    let wanted = sanitize_name(text);
    if let Some(pin) = book.get(&wanted) {
        return Ok(Recipient {
            address: pin.address,
            name: Some(pin.name.clone()),
            source: RecipientSource::Pinned,
        });
    }
    let payable: Vec<Candidate> = peers
        .iter()
        .filter(|peer| peer.state.can_be_paid_by_name())
        .filter_map(|peer| {
            let address = peer.address.filter(|address| address != us)?;
            Some(Candidate {
                name: peer.name.clone()?,
                address,
            })
        })
        .collect();
    let mut matching: Vec<Candidate> = payable
        .iter()
        .filter(|candidate| same_name(&candidate.name, &wanted))
        .cloned()
        .collect();
    matching.sort_by_key(|candidate| candidate.address);
    matching.dedup_by_key(|candidate| candidate.address);
    match matching.len() {
        0 => Err(RecipientError::Unknown {
            text: wanted,
            known: payable,
        }),
        1 => {
            let found = matching.remove(0);
            Ok(Recipient {
                address: found.address,
                name: Some(found.name),
                source: RecipientSource::Peer,
            })
        }
        _ => Err(RecipientError::Ambiguous {
            name: wanted,
            candidates: matching,
        }),
    }
}

// ---- balances ----

/// One account of the ledger at our tip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountView {
    pub address: Address,
    /// Its name, when we know one ("… (you)" for ours).
    pub name: Option<String>,
    pub balance: u64,
    pub nonce: u64,
}

/// Every account with coins or history on our best chain, richest first, ties by address: the
/// same rows on every node of that chain.
pub fn accounts(node: &Node, names: &Names) -> Vec<AccountView> {
    let mut rows: Vec<AccountView> = node
        .tree()
        .ledger()
        .accounts()
        .filter(|(_, account)| account.balance > 0 || account.nonce > 0)
        .map(|(address, account)| AccountView {
            address: *address,
            name: names.name(address),
            balance: account.balance,
            nonce: account.nonce,
        })
        .collect();
    rows.sort_by(|a, b| b.balance.cmp(&a.balance).then(a.address.cmp(&b.address)));
    rows
}
