int kiln_stub_symbol;
