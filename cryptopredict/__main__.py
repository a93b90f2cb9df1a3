from cryptopredict.cli import main

main()
