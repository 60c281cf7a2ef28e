// placeholder: implemented in its own change
#include "commands.hpp"

namespace evbus::app {
void register_completion(CLI::App& /*app*/, const GlobalOptions& /*global*/, Runner& /*runner*/) {}
}  // namespace evbus::app
