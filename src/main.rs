//! The `invitetomedia` binary: parses the command and hands over to the library.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() {
    let code = invitetomedia::cli::run(std::env::args().skip(1).collect()).await;
    std::process::exit(code);
}
