"""End to end: the searched front, trained and deployed, against hand-designed MobileNets on one host."""
