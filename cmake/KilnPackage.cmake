# placeholder until install rules are written
