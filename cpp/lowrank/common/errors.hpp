// Errors the core throws. The bindings translate them:
//   std::invalid_argument -> ValueError      (bad input, message names the argument)
//   std::bad_alloc        -> MemoryError
//   LinAlgError           -> numpy.linalg.LinAlgError (LAPACK did not converge)
//   Interrupted           -> KeyboardInterrupt (the caller's stop hook asked to stop)
#pragma once

#include <stdexcept>
#include <string>

namespace lowrank {

class LinAlgError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class Interrupted : public std::runtime_error {
  public:
    Interrupted() : std::runtime_error("interrupted") {}
};

// A precondition on the caller's input. Never compiled out (unlike assert).
#define LOWRANK_EXPECTS(condition, message)                                   \
    do {                                                                      \
        if (!(condition)) throw std::invalid_argument(std::string(message)); \
    } while (0)

// A LAPACK `info` that must be zero.
inline void check_lapack_info(int info, const char* routine) {
    if (info < 0) {
        throw std::logic_error(std::string(routine) + ": argument " + std::to_string(-info) +
                               " had an illegal value (a bug in lowrank_core)");
    }
    if (info > 0) {
        throw LinAlgError(std::string(routine) + " did not converge (info = " +
                          std::to_string(info) + ")");
    }
}

}  // namespace lowrank
