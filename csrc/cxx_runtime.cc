// The prebuilds promise to load with libstdc++ from GLIBCXX 3.4.21 on (docs/install.md,
// checked by test/prebuilds.test.ts). GCC 11 and later compile std::vector's growth into a
// call to std::__throw_bad_array_new_length, which libstdc++ exports only from GLIBCXX
// 3.4.29 (GCC 11): one push_back in the addon would make the prebuild refuse to load on
// older systems, which would then compile from source. Defined here, the reference is
// resolved inside the addon and asks nothing of the system's libstdc++.
//
// It runs only when a vector is asked for more elements than the address space holds. The
// addon is built without exceptions, so libstdc++'s own version would end the process too.
#include <cstdlib>  // also defines __GLIBCXX__ when the library is libstdc++

#if defined(__GLIBCXX__)

namespace std {
[[noreturn]] void __throw_bad_array_new_length() { std::abort(); }
}  // namespace std
#endif
