/// goringctl: the operator's view into a goring fleet (see tools/goringctl/commands.cpp).
#include <iostream>

#include "tools/goringctl/commands.hpp"

int main(int argc, char** argv) {
  return goringctl::run(argc, argv, std::cout, std::cerr);
}
