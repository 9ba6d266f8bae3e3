# Sourced by the bench scripts: configures the release build the benches run on (RelWithDebInfo, so
# perf can attribute samples) and builds the named targets. Sets $build.
build=build/release
build_release() {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOZIT_BUILD_TESTS=OFF \
    -DCLOZIT_BUILD_BENCH=ON >/dev/null
  ninja -C "$build" "$@" >/dev/null
}
