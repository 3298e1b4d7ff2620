use super::*;

#[test]
fn work_is_compared_in_blocks_at_the_current_target() {
    let per_block = crate::work::Target(0x1f00_ffff).work();
    let times = |n: u64| Work(per_block.0 * crate::work::U256::from(n));
    let ours = times(40);
    assert_eq!(work_ahead_in_blocks(&times(42), &ours, &per_block), 2.0);
    assert_eq!(work_ahead_in_blocks(&times(39), &ours, &per_block), -1.0);
    assert_eq!(work_ahead_in_blocks(&ours, &ours, &per_block), 0.0);
    let cases = [
        (0.0, "same work"),
        (0.04, "same work"),
        (1.0, "1.0 block more"),
        (-1.0, "1.0 block less"),
        (2.46, "2.5 blocks more"),
        (-0.3, "0.3 blocks less"),
    ];
    for (blocks, text) in cases {
        assert_eq!(describe_work_ahead(blocks), text, "{blocks}");
    }
    assert_eq!(
        Work(crate::work::U256::from(3u64) << 100).as_f64(),
        3.0 * 2f64.powi(100)
    );
}

#[test]
fn a_peer_that_went_away_is_remembered_with_when_it_was_seen_and_stays_payable() {
    let bob = peer(1, "bob", 0xbb, PeerState::Ready);
    let carol = peer(2, "carol", 0xcc, PeerState::Ready);
    let mut memory = PeerMemory::default();
    memory.update(&[bob.clone(), carol.clone()], 1_000);
    memory.update(std::slice::from_ref(&carol), 13_500);
    let rows = memory.rows();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].present && rows[0].view.id == carol.id);
    assert!(!rows[1].present);
    assert_eq!(rows[1].seen(13_500), "seen 12 s ago");
    assert_eq!(rows[1].seen(200_000), "seen 3 min ago");
    assert_eq!(rows[0].seen(200_000), "here");
    // Gone, but still paid by name.
    let recipient =
        resolve_recipient("bob", &memory.views(), &AddressBook::default(), &US).unwrap();
    assert_eq!(recipient.address, Address([0xbb; 20]));
    // Back under a new peer id: the old entry goes.
    let bob_again = peer(9, "bob", 0xbb, PeerState::Ready);
    memory.update(&[carol.clone(), bob_again], 20_000);
    assert_eq!(memory.rows().len(), 2);
    assert!(memory.rows().iter().all(|seen| seen.present));
    // Bounded.
    for i in 0..(MAX_REMEMBERED_PEERS as u8 + 10) {
        memory.update(
            &[peer(100 + i, "x", i, PeerState::Ready)],
            30_000 + i as u64,
        );
    }
    memory.update(&[], 40_000);
    assert_eq!(memory.rows().len(), MAX_REMEMBERED_PEERS);
}

#[test]
fn counts_have_the_right_noun() {
    assert_eq!(plural(1, "transaction", "transactions"), "1 transaction");
    assert_eq!(plural(0, "transaction", "transactions"), "0 transactions");
    assert_eq!(
        plural(2, "confirmation", "confirmations"),
        "2 confirmations"
    );
}

fn peer(id: u8, name: &str, address: u8, state: PeerState) -> PeerView {
    PeerView {
        id: PeerId::from_bytes([id; 16]),
        name: Some(name.into()),
        address: Some(Address([address; 20])),
        state,
        refusal: None,
        other_network: None,
        tip: None,
        misbehavior: 0,
        muted: false,
        banned: false,
        last_offense: None,
    }
}

const US: Address = Address([0xee; 20]);

#[test]
fn names_lose_control_characters_and_escapes() {
    let cases = [
        ("bob", "bob"),
        ("  bob  ", "bob"),
        ("\u{1b}[31mbob\u{1b}[0m", "bob"),
        ("\u{1b}]0;owned\u{7}bob", "bob"),
        ("\u{1b}]8;;http://x\u{1b}\\bob", "bob"),
        ("bo\u{1b}Mb", "bob"),
        ("b\u{9b}2Job", "bob"),
        ("b\no\rb\u{7}\u{0}", "bob"),
        ("b\u{202e}ob\u{200b}", "bob"),
        ("\u{1b}[", ""),
        ("Zoë", "Zoë"),
    ];
    for (raw, shown) in cases {
        assert_eq!(sanitize_name(raw), shown, "{raw:?}");
    }
    assert_eq!(sanitize_name(&"x".repeat(100)).len(), MAX_SHOWN_NAME_CHARS);
}

#[test]
fn a_name_two_peers_claim_is_refused_with_both_addresses() {
    // Issue 12: a rogue said hello as `bob` and got the coins meant for bob.
    let peers = [
        peer(1, "bob", 0xbb, PeerState::Ready),
        peer(2, "bob", 0x66, PeerState::Ready),
    ];
    let book = AddressBook::default();
    let error = resolve_recipient("bob", &peers, &book, &US).unwrap_err();
    let RecipientError::Ambiguous { candidates, .. } = &error else {
        panic!("{error:?}");
    };
    let addresses: Vec<Address> = candidates.iter().map(|c| c.address).collect();
    assert_eq!(addresses, [Address([0x66; 20]), Address([0xbb; 20])]);
    let text = error.to_string();
    assert!(text.contains(&"bb".repeat(20)) && text.contains(&"66".repeat(20)));
    // Case does not make a different name.
    let peers = [
        peer(1, "bob", 0xbb, PeerState::Ready),
        peer(2, "BOB", 0x66, PeerState::Ready),
    ];
    assert!(matches!(
        resolve_recipient("Bob", &peers, &book, &US),
        Err(RecipientError::Ambiguous { .. })
    ));
}

#[test]
fn a_pinned_name_wins_over_what_peers_claim() {
    let peers = [
        peer(1, "bob", 0x66, PeerState::Ready),
        peer(2, "bob", 0xbb, PeerState::Ready),
    ];
    let mut book = AddressBook::default();
    book.pin("Bob", Address([0xbb; 20])).unwrap();
    let found = resolve_recipient("bob", &peers, &book, &US).unwrap();
    assert_eq!(found.address, Address([0xbb; 20]));
    assert_eq!(found.source, RecipientSource::Pinned);
    // Even with only the impostor in the room.
    let found = resolve_recipient("bob", &peers[..1], &book, &US).unwrap();
    assert_eq!(found.address, Address([0xbb; 20]));
}

#[test]
fn recipients_by_address_name_or_suggestion() {
    let peers = [
        peer(1, "Carol", 0xcc, PeerState::Ready),
        peer(2, "dave", 0xdd, PeerState::Refused),
        peer(3, "erin", 0xe1, PeerState::Banned),
        peer(4, "me", 0xee, PeerState::Ready),
        peer(5, "frank", 0xf1, PeerState::Muted),
    ];
    let book = AddressBook::default();
    let resolve = |text: &str| resolve_recipient(text, &peers, &book, &US);
    let carol = Address([0xcc; 20]);
    assert_eq!(resolve("carol").unwrap().address, carol);
    assert_eq!(resolve(" CAROL ").unwrap().address, carol);
    assert_eq!(resolve(&carol.to_hex()).unwrap().address, carol);
    assert_eq!(
        resolve(&carol.to_hex().to_uppercase()).unwrap().address,
        carol
    );
    assert_eq!(
        resolve(&format!("Carol ({})", carol.to_hex()))
            .unwrap()
            .address,
        carol
    );
    assert_eq!(resolve("frank").unwrap().address, Address([0xf1; 20]));
    assert_eq!(resolve(""), Err(RecipientError::Empty));
    for nobody in ["dave", "erin", "me", "zed"] {
        let Err(RecipientError::Unknown { known, .. }) = resolve(nobody) else {
            panic!("{nobody} is not payable by name");
        };
        let names: Vec<&str> = known.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Carol", "frank"]);
    }
}

#[test]
fn the_address_book_round_trips_and_is_bounded() {
    let mut book = AddressBook::default();
    assert_eq!(
        book.pin(" bob\u{1b}[2J ", Address([1; 20])),
        Ok("bob".into())
    );
    assert_eq!(book.pin("BOB", Address([2; 20])), Ok("BOB".into()));
    assert_eq!(book.pins().len(), 1, "one pin per name, without case");
    assert_eq!(
        book.pin("\u{7}", Address([1; 20])),
        Err(PinError::EmptyName)
    );
    assert_eq!(
        book.pin(&"ab".repeat(20), Address([1; 20])),
        Err(PinError::NameIsAnAddress)
    );
    let again = AddressBook::from_json(&book.to_json()).unwrap();
    assert_eq!(again, book);
    assert_eq!(again.get("bob").unwrap().address, Address([2; 20]));
    assert!(book.unpin("Bob"));
    assert!(!book.unpin("bob"));
    for n in 0..MAX_PINS {
        book.pin(&format!("p{n}"), Address([3; 20])).unwrap();
    }
    assert_eq!(book.pin("one more", Address([3; 20])), Err(PinError::Full));
}

/// A chain of `count` blocks mined on the test network, and their hashes.
fn mined_tree(count: usize) -> (BlockTree, Vec<Hash>, u64) {
    let params = crate::params::NetworkParams::test();
    let mut tree = BlockTree::new(params.clone());
    let mut now = params.genesis_timestamp_ms;
    let mut hashes = Vec::new();
    for _ in 0..count {
        now += params.target_block_ms;
        let mut block = tree.block_template(Address([9; 20]), vec![], now);
        let crate::mining::MiningOutcome::Found { nonce, .. } =
            crate::mining::mine(&block.header, 0, u64::MAX)
        else {
            panic!("the test target is met within a few hashes");
        };
        block.header.nonce = nonce;
        hashes.push(block.hash());
        tree.add_block(block, now).expect("a valid block");
    }
    (tree, hashes, now)
}

#[test]
fn a_stored_block_lists_every_rule_as_check_block_finds_it() {
    let (tree, hashes, now) = mined_tree(3);
    let rules = block_rules(&tree, &hashes[1], now).unwrap();
    let listed: Vec<Rule> = rules.iter().filter_map(|rule| rule.rule).collect();
    assert_eq!(
        listed,
        Rule::ALL,
        "every context rule, the future-time rule included"
    );
    assert!(
        rules.iter().all(|rule| rule.outcome == RuleOutcome::Passed),
        "{rules:?}"
    );
    assert_eq!(rules.last().unwrap().title, "nonces and balances");
    // Seen from a clock far behind the block, the future-time rule is the one that fails.
    let early = tree.params().genesis_timestamp_ms - 10 * tree.params().max_future_ms;
    let rules = block_rules(&tree, &hashes[1], early).unwrap();
    let failed: Vec<(Option<Rule>, &RuleOutcome)> = rules
        .iter()
        .filter(|rule| rule.outcome != RuleOutcome::Passed)
        .map(|rule| (rule.rule, &rule.outcome))
        .collect();
    assert_eq!(failed.len(), 1 + (Rule::ALL.len() - 7), "{failed:?}");
    assert!(matches!(
        failed[0],
        (
            Some(Rule::TimestampNotAhead),
            RuleOutcome::Failed(crate::ValidationError::TimestampTooFarAhead { .. })
        )
    ));
    let genesis = block_rules(&tree, &tree.genesis_hash(), now).unwrap();
    assert_eq!(genesis.len(), 1);
}
