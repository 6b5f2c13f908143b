// Runtimes that import `.wasm` files (workerd, bundlers for edge targets) hand over a compiled module.
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
