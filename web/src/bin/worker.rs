//! The mining Web Worker's entry point; `cargo xtask build-web` (and trunk) build it from the
//! second `rust` link in `index.html` (`data-type="worker"`).

fn main() {
    #[cfg(target_arch = "wasm32")]
    {
        use gloo_worker::Registrable;
        web::miner_worker::MiningWorker::registrar().register();
    }
}
