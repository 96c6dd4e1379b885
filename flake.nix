# infragen: compile a Pigsty-style INFRA inventory into validated per-host artifacts.
#
# Outputs (for x86_64-linux and aarch64-linux):
#   packages.<system>.default  - the `infragen` binary (buildRustPackage; tests skipped here)
#   devShells.<system>.default - Rust toolchain plus the external validators the project runs
#   checks.<system>.default    - the same package with `cargo test` enabled and the validators
#                                on PATH, so `nix flake check` runs the test suite
#   formatter.<system>         - nixpkgs-fmt (`nix fmt`)
{
  description = "infragen - compile an INFRA inventory into immutable, validated, per-host artifacts";

  # nixos-25.11 rather than 24.05: Cargo.lock pins crates needing rustc >= 1.88
  # (pest 2.9, psm) and edition-2024 manifests; 24.05 ships rustc 1.77.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # External tools infragen shells out to when validating rendered artifacts.
      validators = pkgs: with pkgs; [
        nginx # nginx -t
        prometheus-alertmanager # alertmanager / amtool
        victoriametrics # victoria-metrics, vmalert
        prometheus-blackbox-exporter # blackbox_exporter --config.check
        prometheus-nginx-exporter # its flags, parsed by the program (-version)
        dnsmasq # dnsmasq --test
        chrony # chronyd
        skopeo # image copy/inspect
        umoci # OCI image unpack
        runc # OCI runtime spec
        openssl # certificates
        systemd # systemd-analyze verify
      ];
    in
    {
      packages = forAllSystems (pkgs: {
        default = pkgs.rustPlatform.buildRustPackage {
          pname = "infragen";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          doCheck = false; # tests run in checks.<system>.default
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [ cargo rustc clippy rustfmt ] ++ validators pkgs;
        };
      });

      checks = forAllSystems (pkgs: {
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.default.overrideAttrs (old: {
          doCheck = true;
          nativeCheckInputs = (old.nativeCheckInputs or [ ]) ++ validators pkgs;
        });
      });

      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);
    };
}
