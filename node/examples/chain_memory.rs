//! What a node holds in memory per block of its chain (issue 25): the heap a `BlockTree` takes
//! for chains of 10,000, 50,000 and 250,000 coinbase-only blocks of the test network (every block
//! with its header, its undo record, its index entries), counted by a global allocator that
//! tracks live bytes. A tab holds the same tree (wasm32: pointers of 4 bytes, so a little less)
//! plus the page's own state.
//!
//! Run: `cargo run --release -p node --example chain_memory` (add `-- 10000,50000` for sizes).

#[path = "../tests/common/testkit.rs"]
#[allow(dead_code)] // `preload` serves the examples and tests that start nodes
mod testkit;

use shared::chain::BlockTree;
use shared::{Address, NetworkParams};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .nth(1)
        .map(|sizes| sizes.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 50_000, 250_000]);
    let params = NetworkParams::test();
    let longest = sizes.iter().copied().max().unwrap_or(0);
    let blocks = testkit::synthetic_chain(&params, Address([9; 20]), longest);
    let json_bytes: usize = blocks
        .iter()
        .map(|block| serde_json::to_string(block.as_ref()).map_or(0, |json| json.len()))
        .sum();
    println!("| blocks | heap of the tree | per block | the blocks as JSON, per block |");
    println!("|---|---|---|---|");
    for &size in &sizes {
        let before = LIVE.load(Ordering::Relaxed);
        let mut tree = BlockTree::new(params.clone());
        for block in &blocks[..size] {
            let now = block.header.timestamp_ms;
            tree.add_block(block.as_ref().clone(), now)
                .expect("the synthetic chain is valid");
        }
        let held = LIVE.load(Ordering::Relaxed) - before;
        println!(
            "| {size} | {:.1} MB | {} bytes | {} bytes |",
            held as f64 / 1e6,
            held / size,
            json_bytes / longest
        );
        assert_eq!(tree.tip_height(), size as u64);
        drop(tree);
    }
}
